//! The one set of Lightyear keys every test and the benchmark runner use.

use bevygap_shared::{LightyearKeys, PrivateKey};

/// The fixed test protocol id.
pub const TEST_PROTOCOL_ID: u64 = 0x6a2b_9c01;

/// The fixed test private key: bytes that all differ from their neighbours, so a key read or
/// encoded out of order does not pass by luck.
pub const TEST_PRIVATE_KEY: [u8; 32] = [
    0x5a, 0x0b, 0x8c, 0x7d, 0x6e, 0x5f, 0x40, 0x31, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, //
    0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99,
];

/// The keys of every test matchmaker and game server ([`TEST_PROTOCOL_ID`], [`TEST_PRIVATE_KEY`]);
/// [`LightyearKeys::to_env`] gives the environment a child process reads them from.
pub fn test_keys() -> LightyearKeys {
    LightyearKeys { protocol_id: TEST_PROTOCOL_ID, private_key: PrivateKey::from_bytes(TEST_PRIVATE_KEY) }
}
