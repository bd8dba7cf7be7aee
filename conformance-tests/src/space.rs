//! AREA-PLACEHOLDER: cases for this area are being written.

/// The cases of this area, for [`crate::conformance_suite!`].
#[doc(hidden)]
#[macro_export]
macro_rules! space_cases {
    ($make:expr) => {
        $crate::cases!($make, space, []);
    };
}
