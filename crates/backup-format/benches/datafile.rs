//! Data-file write and read throughput, beside the raw speed of zstd level 1,
//! AES-256-GCM and crc32c on the same bytes, measured in the same run.
//!
//! Every figure is per raw byte of entries. The ratios that matter:
//! `write/zstd+aes` against `baseline/pipeline zstd1>aes>crc32c`, and
//! `read/zstd+aes` against `baseline/pipeline crc32c>aes>unzstd`.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::io;
use std::ops::Range;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Key};
use backup_format::datafile::{Compression, DataFileOptions, DataFileReader, DataFileWriter};
use backup_format::{EncryptionKey, MvccEntry, Span, Timestamp};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const RAW_TARGET: usize = 8 * 1024 * 1024;

/// Row-like entries (~3x compressible with zstd level 1), deterministic.
fn rows() -> Vec<MvccEntry> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let first = [
        "ana", "bo", "chen", "dara", "eli", "femi", "gus", "hana", "ivan", "jo",
    ];
    let last = [
        "smith", "garcia", "kim", "okafor", "novak", "rossi", "tanaka", "silva",
    ];
    let city = [
        "new york",
        "lagos",
        "berlin",
        "são paulo",
        "tokyo",
        "mumbai",
        "austin",
    ];
    let mut out = Vec::new();
    let mut size = 0;
    let mut i: u64 = 0;
    while size < RAW_TARGET {
        let r = next();
        let key = format!("/Table/53/1/{:012}/0", i * 7);
        let (f, l) = (first[(r % 10) as usize], last[(r >> 8) as usize % 8]);
        let value = format!(
            "{{\"id\":{i},\"name\":\"{f} {l}\",\"email\":\"{f}.{l}{}@example.com\",\"balance\":{}.{:02},\"city\":\"{}\",\"created\":\"2026-{:02}-{:02}T{:02}:{:02}:00Z\",\"token\":\"{:016x}{:08x}\",\"score\":{},\"session\":\"{:016x}{:016x}{:016x}{:08x}\"}}",
            r % 1000,
            (r >> 16) % 100_000,
            (r >> 40) % 100,
            city[(r >> 20) as usize % 7],
            1 + (r >> 24) % 12,
            1 + (r >> 28) % 28,
            (r >> 32) % 24,
            (r >> 36) % 60,
            next(),
            next() >> 32,
            next() % 1_000_000,
            next(),
            next(),
            next(),
            next() >> 32,
        );
        let e = MvccEntry::put(
            key,
            Timestamp::new(1_700_000_000_000_000_000 + i as i64, 0),
            value,
        );
        size += e.size();
        out.push(e);
        i += 1;
    }
    out
}

fn write(entries: &[MvccEntry], opts: &DataFileOptions) -> Vec<u8> {
    let mut w = DataFileWriter::new("bench.sst", Vec::with_capacity(RAW_TARGET), opts).unwrap();
    for e in entries {
        w.add(e).unwrap();
    }
    w.finish().unwrap().0
}

fn read_all(bytes: &[u8], key: Option<&EncryptionKey>) -> usize {
    let fetch = |r: Range<u64>| -> io::Result<Vec<u8>> {
        Ok(bytes[r.start as usize..r.end as usize].to_vec())
    };
    let mut reader = DataFileReader::open("bench.sst", bytes.len() as u64, fetch, key).unwrap();
    let mut n = 0usize;
    reader
        .scan(&Span::all())
        .for_each_ref(|e| n += e.key.len() + e.value.map_or(0, <[u8]>::len))
        .unwrap();
    n
}

/// The raw blocks a data file holds (from an uncompressed, unencrypted file).
fn raw_blocks(plain_file: &[u8]) -> Vec<Vec<u8>> {
    let fetch = |r: Range<u64>| -> io::Result<Vec<u8>> {
        Ok(plain_file[r.start as usize..r.end as usize].to_vec())
    };
    let reader = DataFileReader::open("plain", plain_file.len() as u64, fetch, None).unwrap();
    reader
        .index()
        .blocks
        .iter()
        .map(|b| plain_file[b.offset as usize..(b.offset + b.len - 4) as usize].to_vec())
        .collect()
}

fn nonce(i: usize) -> [u8; 12] {
    let mut n = [7u8; 12];
    n[8..].copy_from_slice(&(i as u32).to_be_bytes());
    n
}

fn benches(c: &mut Criterion) {
    let entries = rows();
    let raw_bytes: u64 = entries.iter().map(|e| e.size() as u64).sum();
    let key = EncryptionKey::from_bytes([3; 32]);
    let plain_opts = DataFileOptions {
        compression: Compression::None,
        ..DataFileOptions::default()
    };
    let zstd_opts = DataFileOptions::default();
    let enc_opts = DataFileOptions {
        encryption: Some(key.clone()),
        ..DataFileOptions::default()
    };
    let plain_file = write(&entries, &plain_opts);
    let zstd_file = write(&entries, &zstd_opts);
    let enc_file = write(&entries, &enc_opts);
    let blocks = raw_blocks(&plain_file);
    let block_bytes: usize = blocks.iter().map(Vec::len).sum();
    eprintln!(
        "data: {} entries, {raw_bytes} raw bytes, {} blocks, zstd-1 ratio {:.2}x",
        entries.len(),
        blocks.len(),
        plain_file.len() as f64 / zstd_file.len() as f64
    );

    let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from([3u8; 32]));
    let mut g = c.benchmark_group("baseline");
    g.throughput(Throughput::Bytes(block_bytes as u64));
    g.sample_size(10);
    let mut compressor = zstd::bulk::Compressor::new(1).unwrap();
    let mut out = Vec::with_capacity(256 * 1024);
    g.bench_function("zstd1 compress", |b| {
        b.iter(|| {
            for blk in &blocks {
                out.clear();
                compressor.compress_to_buffer(blk, &mut out).unwrap();
                black_box(&out);
            }
        })
    });
    let mut buf = Vec::with_capacity(256 * 1024);
    g.bench_function("aes-256-gcm encrypt", |b| {
        b.iter(|| {
            for (i, blk) in blocks.iter().enumerate() {
                buf.clear();
                buf.extend_from_slice(blk);
                let tag = cipher
                    .encrypt_inout_detached(&nonce(i).into(), b"aad", buf.as_mut_slice().into())
                    .unwrap();
                black_box(tag);
            }
        })
    });
    g.bench_function("crc32c", |b| {
        b.iter(|| {
            blocks
                .iter()
                .map(|blk| crc32c::crc32c(blk))
                .fold(0, |a, c| a ^ c)
        })
    });
    g.bench_function("pipeline zstd1>aes>crc32c", |b| {
        b.iter(|| {
            for (i, blk) in blocks.iter().enumerate() {
                out.clear();
                compressor.compress_to_buffer(blk, &mut out).unwrap();
                let tag = cipher
                    .encrypt_inout_detached(&nonce(i).into(), b"aad", out.as_mut_slice().into())
                    .unwrap();
                out.extend_from_slice(&tag);
                black_box(crc32c::crc32c(&out));
            }
        })
    });
    // The sealed blocks for the decode pipeline.
    let sealed: Vec<(Vec<u8>, u32, usize)> = blocks
        .iter()
        .enumerate()
        .map(|(i, blk)| {
            let mut s = zstd::bulk::compress(blk, 1).unwrap();
            let tag = cipher
                .encrypt_inout_detached(&nonce(i).into(), b"aad", s.as_mut_slice().into())
                .unwrap();
            s.extend_from_slice(&tag);
            let crc = crc32c::crc32c(&s);
            (s, crc, blk.len())
        })
        .collect();
    let mut decompressor = zstd::bulk::Decompressor::new().unwrap();
    let mut raw = Vec::with_capacity(256 * 1024);
    g.bench_function("pipeline crc32c>aes>unzstd", |b| {
        b.iter(|| {
            for (i, (s, crc, len)) in sealed.iter().enumerate() {
                assert_eq!(crc32c::crc32c(s), *crc);
                buf.clear();
                buf.extend_from_slice(s);
                let n = buf.len() - 16;
                let (msg, tag) = buf.split_at_mut(n);
                let mut t = [0u8; 16];
                t.copy_from_slice(tag);
                cipher
                    .decrypt_inout_detached(&nonce(i).into(), b"aad", msg.into(), &t.into())
                    .unwrap();
                raw.clear();
                raw.reserve(*len);
                decompressor.decompress_to_buffer(msg, &mut raw).unwrap();
                black_box(&raw);
            }
        })
    });
    g.finish();

    let mut g = c.benchmark_group("write");
    g.throughput(Throughput::Bytes(block_bytes as u64));
    g.sample_size(10);
    g.bench_function("plain", |b| b.iter(|| write(&entries, &plain_opts).len()));
    g.bench_function("zstd", |b| b.iter(|| write(&entries, &zstd_opts).len()));
    g.bench_function("zstd+aes", |b| b.iter(|| write(&entries, &enc_opts).len()));
    g.finish();

    let mut g = c.benchmark_group("read");
    g.throughput(Throughput::Bytes(block_bytes as u64));
    g.sample_size(10);
    g.bench_function("plain", |b| b.iter(|| read_all(&plain_file, None)));
    g.bench_function("zstd", |b| b.iter(|| read_all(&zstd_file, None)));
    g.bench_function("zstd+aes", |b| b.iter(|| read_all(&enc_file, Some(&key))));
    g.finish();
}

criterion_group!(datafile, benches);
criterion_main!(datafile);
