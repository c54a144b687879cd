//! Under construction: see issue 3.
