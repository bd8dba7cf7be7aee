//! AREA-PLACEHOLDER: cases for this area are being written.

/// The cases of this area, for [`crate::conformance_suite!`].
#[doc(hidden)]
#[macro_export]
macro_rules! dead_letter_cases {
    ($make:expr) => {
        $crate::cases!($make, dead_letter, []);
    };
}
