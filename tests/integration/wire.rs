//! A minimal Kafka producer speaking the wire protocol itself (Produce v3, record batch v2), for
//! batches librdkafka's producer will not write: one the consumer cannot deliver
//! (docs/events.md 2.8's undeliverable class). One request per batch, to the one broker of the
//! test servers.
//!
//! The development broker (tansu 0.6.0) stores nothing a consumer could fail on by itself: it
//! refuses a damaged zstd frame or an unknown codec at produce, and rewrites a batch with a bad
//! CRC or lz4 checksum. What it keeps, and librdkafka then cannot deliver, is a zstd batch whose
//! records decompress to more than the consumer's `receive.message.max.bytes` (librdkafka
//! refuses it as a bad compression, and fetches the same offset again, forever). With Apache
//! Kafka's defaults that takes 100 MB of records; the tests lower the bound ([`SMALL_RECEIVE`])
//! and pad every record's header ([`undeliverable_batch`]): tansu serves what it stored record
//! by record, so a record without padding would be delivered on its own.

use std::io::{Read, Write};
use std::net::TcpStream;

/// CRC-32C (Castagnoli), as record batches carry it.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    !crc
}

fn varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        if z < 0x80 {
            out.push(z as u8);
            return;
        }
        out.push((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
}

/// Consumer settings (`DV_KAFKA_CONSUMER_*`) under which [`undeliverable_batch`] is
/// undeliverable: fetches of 1 MiB, and messages (a compressed batch decompressed) of at most
/// that plus the 512 bytes librdkafka requires above it.
pub const SMALL_RECEIVE: [(&str, &str); 2] = [("fetch.max.bytes", "1048576"), ("receive.message.max.bytes", "1049088")];

/// The same as environment variables, for child processes.
pub fn small_receive_env() -> Vec<(String, String)> {
    SMALL_RECEIVE
        .iter()
        .map(|(k, v)| (format!("DV_KAFKA_CONSUMER_{}", k.replace('.', "_").to_uppercase()), v.to_string()))
        .collect()
}

/// Bytes of padding in each record's header: one record decompressed passes 1 MiB + 512.
const PADDING: usize = 1_200_000;

/// One record with a header `pad` of [`PADDING`] zero bytes.
fn padded_record(offset_delta: i64, key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut body = vec![0u8]; // attributes
    varint(&mut body, 0); // timestamp delta
    varint(&mut body, offset_delta);
    varint(&mut body, key.len() as i64);
    body.extend_from_slice(key);
    varint(&mut body, value.len() as i64);
    body.extend_from_slice(value);
    varint(&mut body, 1); // one header
    varint(&mut body, 3);
    body.extend_from_slice(b"pad");
    varint(&mut body, PADDING as i64);
    body.resize(body.len() + PADDING, 0);
    let mut out = Vec::new();
    varint(&mut out, body.len() as i64);
    out.extend(body);
    out
}

/// A zstd (codec 4) record batch of `messages` (key, value) that a consumer with
/// [`SMALL_RECEIVE`] cannot deliver: each record carries a header of [`PADDING`] zero bytes
/// (the batch stays a few KB on the wire).
pub fn undeliverable_batch(messages: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut records = Vec::new();
    for (i, (k, v)) in messages.iter().enumerate() {
        records.extend(padded_record(i as i64, k, v));
    }
    let compressed = zstd::encode_all(records.as_slice(), 3).expect("zstd");
    let now = chrono::Utc::now().timestamp_millis();
    let mut after_crc = Vec::new();
    after_crc.extend_from_slice(&4i16.to_be_bytes()); // attributes: zstd
    after_crc.extend_from_slice(&(messages.len() as i32 - 1).to_be_bytes()); // last offset delta
    after_crc.extend_from_slice(&now.to_be_bytes());
    after_crc.extend_from_slice(&now.to_be_bytes());
    after_crc.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
    after_crc.extend_from_slice(&(-1i16).to_be_bytes()); // producer epoch
    after_crc.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    after_crc.extend_from_slice(&(messages.len() as i32).to_be_bytes());
    after_crc.extend(compressed);
    let mut after_length = Vec::new();
    after_length.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
    after_length.push(2); // magic
    after_length.extend_from_slice(&crc32c(&after_crc).to_be_bytes());
    after_length.extend(after_crc);
    let mut batch = Vec::new();
    batch.extend_from_slice(&0i64.to_be_bytes()); // base offset (the broker assigns it)
    batch.extend_from_slice(&(after_length.len() as i32).to_be_bytes());
    batch.extend(after_length);
    batch
}

fn string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as i16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Produces one record batch to (topic, partition) and returns the broker's error code (0: ok).
pub fn produce(broker: &str, topic: &str, partition: i32, batch: &[u8]) -> i16 {
    let mut req = Vec::new();
    req.extend_from_slice(&0i16.to_be_bytes()); // Produce
    req.extend_from_slice(&3i16.to_be_bytes()); // v3: record batches v2
    req.extend_from_slice(&7i32.to_be_bytes()); // correlation id
    string(&mut req, "dv-test-wire");
    req.extend_from_slice(&(-1i16).to_be_bytes()); // no transactional id
    req.extend_from_slice(&(-1i16).to_be_bytes()); // acks = all
    req.extend_from_slice(&10_000i32.to_be_bytes());
    req.extend_from_slice(&1i32.to_be_bytes());
    string(&mut req, topic);
    req.extend_from_slice(&1i32.to_be_bytes());
    req.extend_from_slice(&partition.to_be_bytes());
    req.extend_from_slice(&(batch.len() as i32).to_be_bytes());
    req.extend_from_slice(batch);

    let mut stream = TcpStream::connect(broker).expect("connect to the broker");
    stream.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    stream.write_all(&(req.len() as i32).to_be_bytes()).unwrap();
    stream.write_all(&req).unwrap();
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).expect("a produce response");
    let mut resp = vec![0u8; i32::from_be_bytes(len) as usize];
    stream.read_exact(&mut resp).unwrap();
    // correlation id, topics (1), name, partitions (1), partition, then the error code.
    let name_len = i16::from_be_bytes([resp[8], resp[9]]) as usize;
    let at = 4 + 4 + 2 + name_len + 4 + 4;
    i16::from_be_bytes([resp[at], resp[at + 1]])
}

#[test]
fn crc32c_matches_the_standard_check_value() {
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
}
