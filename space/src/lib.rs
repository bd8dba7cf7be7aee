//! SPACE-PLACEHOLDER: tuple spaces over the Courier api (being written).
