-- The runtime of selectors compiled to Lua (see lua.rs): the api's three-valued logic and
-- conversion rules (eval.rs), on Lua 5.1 numbers (doubles). A value is nil (NULL) or
-- {'b', bool}, {'s', string}, {'d', number} or {'l', number, exact, decimal text}.
-- The chunk is one expression, the runtime table: embed it as `local K = <this text>`.
(function()
  local K = {}
  local EXACT = 9007199254740992 -- 2^53
  K.UNDECIDED = {}

  local function undecided() error(K.UNDECIDED, 0) end

  function K.num(text)
    if text == 'nan' then return 0 / 0 end
    if text == 'inf' then return 1 / 0 end
    if text == '-inf' then return -1 / 0 end
    return tonumber(text)
  end

  function K.dbl(text) return {'d', K.num(text)} end

  -- A long from its decimal text: exact as a double when within 2^53.
  function K.long(text)
    local n = tonumber(text)
    return {'l', n, n > -EXACT and n < EXACT, text}
  end

  local function exact_long(n) return {'l', n, true, nil} end

  local function is_num(v) return v[1] == 'l' or v[1] == 'd' end

  -- Compares two decimal integer texts exactly: -1, 0 or 1.
  local function cmp_decimal(a, b)
    local na, nb = a:sub(1, 1) == '-', b:sub(1, 1) == '-'
    if na ~= nb then return na and -1 or 1 end
    local da, db = na and a:sub(2) or a, nb and b:sub(2) or b
    local r
    if #da ~= #db then
      r = #da < #db and -1 or 1
    elseif da == db then
      r = 0
    else
      r = da < db and -1 or 1
    end
    if na then r = -r end
    return r
  end

  local function decimal(v)
    if v[4] then return v[4] end
    return string.format('%.0f', v[2])
  end

  function K.cmp(op, a, b)
    if a == nil or b == nil then return nil end
    if is_num(a) and is_num(b) then
      if a[1] == 'l' and b[1] == 'l' and not (a[3] and b[3]) then
        local c = cmp_decimal(decimal(a), decimal(b))
        if op == '=' then return c == 0 elseif op == '<>' then return c ~= 0
        elseif op == '<' then return c < 0 elseif op == '<=' then return c <= 0
        elseif op == '>' then return c > 0 else return c >= 0 end
      end
      local x, y = a[2], b[2]
      if op == '=' then return x == y elseif op == '<>' then return not (x == y)
      elseif op == '<' then return x < y elseif op == '<=' then return x <= y
      elseif op == '>' then return x > y else return x >= y end
    end
    local equal
    if a[1] == 's' and b[1] == 's' then equal = a[2] == b[2]
    elseif a[1] == 'b' and b[1] == 'b' then equal = a[2] == b[2]
    else return false end
    if op == '=' then return equal elseif op == '<>' then return not equal end
    return nil
  end

  function K.ar(a, op, b)
    if a == nil or b == nil or not is_num(a) or not is_num(b) then return nil end
    local x, y = a[2], b[2]
    if a[1] == 'l' and b[1] == 'l' then
      if not (a[3] and b[3]) then undecided() end
      if op == '/' then
        if y == 0 then return nil end
        local q = x / y
        if q >= 0 then q = math.floor(q) else q = math.ceil(q) end
        return exact_long(q)
      end
      local r
      if op == '+' then r = x + y elseif op == '-' then r = x - y else r = x * y end
      if r <= -EXACT or r >= EXACT then undecided() end
      return exact_long(r)
    end
    if op == '+' then return {'d', x + y} elseif op == '-' then return {'d', x - y}
    elseif op == '*' then return {'d', x * y} else return {'d', x / y} end
  end

  function K.neg(a)
    if a == nil or not is_num(a) then return nil end
    if a[1] == 'd' then return {'d', -a[2]} end
    if a[3] then return exact_long(-a[2]) end
    local text = a[4]
    if text == '-9223372036854775808' then return {'d', -a[2]} end
    if text:sub(1, 1) == '-' then return K.long(text:sub(2)) end
    return K.long('-' .. text)
  end

  function K.pos(a)
    if a == nil or not is_num(a) then return nil end
    return a
  end

  function K.truth(v)
    if v == nil or v[1] ~= 'b' then return nil end
    return v[2]
  end

  function K.bool(t)
    if t == nil then return nil end
    return {'b', t}
  end

  function K.not3(t)
    if t == nil then return nil end
    return not t
  end

  function K.and3(n, ...)
    local unknown = false
    for i = 1, n do
      local t = select(i, ...)
      if t == false then return false end
      if t == nil then unknown = true end
    end
    if unknown then return nil end
    return true
  end

  function K.or3(n, ...)
    local unknown = false
    for i = 1, n do
      local t = select(i, ...)
      if t == true then return true end
      if t == nil then unknown = true end
    end
    if unknown then return nil end
    return false
  end

  function K.between(negated, v, lo, hi)
    local within = K.and3(2, K.cmp('>=', v, lo), K.cmp('<=', v, hi))
    if within == nil then return nil end
    return within ~= negated
  end

  function K.isin(negated, v, set)
    if v == nil or v[1] ~= 's' then return nil end
    return (set[v[2]] == true) ~= negated
  end

  function K.isnull(negated, v)
    return (v == nil) ~= negated
  end

  function K.anyeq(v, literals)
    if v == nil then return nil end
    for _, l in ipairs(literals) do
      if K.cmp('=', v, l) == true then return true end
    end
    return false
  end

  -- LIKE over characters (UTF-8 sequences), tokens: a character, 1 (`_`) or 2 (`%`).
  local function chars(text)
    local out = {}
    for c in string.gmatch(text, '[%z\1-\127\192-\255][\128-\191]*') do
      out[#out + 1] = c
    end
    return out
  end

  function K.like(negated, v, tokens)
    if v == nil or v[1] ~= 's' then return nil end
    local text = chars(v[2])
    local t, p, n, m = 1, 1, #text, #tokens
    local star, mark = 0, 0
    while t <= n do
      local token = tokens[p]
      if p <= m and token ~= 2 and (token == 1 or token == text[t]) then
        t, p = t + 1, p + 1
      elseif p <= m and token == 2 then
        star, mark, p = p, t, p + 1
      elseif star ~= 0 then
        p, mark = star + 1, mark + 1
        t = mark
      else
        return negated
      end
    end
    while p <= m and tokens[p] == 2 do p = p + 1 end
    return (p > m) ~= negated
  end

  return K
end)()
