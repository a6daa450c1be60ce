//! VISCA codec throughput: encoding a mix of commands and inquiries, and
//! decoding a large buffer of mixed replies with some line noise, reported
//! both in packets/s and bytes/s.

use bytes::BytesMut;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use studiod::visca::{
    decode, encode, Address, Direction, Inquiry, MemoryOp, Nibbles, Packet, Raw, Reply, ViscaCommand, ViscaErrorCode, ZoomDrive,
};

fn packets() -> Vec<Packet> {
    let a = Address::new(1).unwrap();
    vec![
        Packet::command(a, ViscaCommand::Memory { op: MemoryOp::Recall, memory: 3 }),
        Packet::command(a, ViscaCommand::PanTiltDrive { direction: Direction::UpLeft, pan_speed: 0x10, tilt_speed: 0x10 }),
        Packet::command(
            a,
            ViscaCommand::PanTiltAbsolute { pan_speed: 0x18, tilt_speed: 0x14, pan: -432, tilt: 72, nibbles: Nibbles::Four },
        ),
        Packet::command(a, ViscaCommand::ZoomDirect(0x1000)),
        Packet::command(a, ViscaCommand::Zoom(ZoomDrive::TeleVariable(3))),
        Packet::inquiry(a, Inquiry::PanTiltPosition),
        Packet::inquiry(a, Inquiry::Power),
        Packet::AddressSet,
    ]
}

/// About 1 MiB of replies from cameras 1–7, with a burst of noise every 16 packets.
fn reply_stream() -> (Vec<u8>, usize) {
    let replies = [
        Reply::Ack { address: 1, socket: 1 },
        Reply::Completion { address: 2, socket: 2 },
        Reply::Answer { address: 3, payload: Raw::new(&[0x0F, 0x0E, 0x05, 0x00, 0x00, 0x00, 0x04, 0x08]).unwrap() },
        Reply::Answer { address: 4, payload: Raw::new(&[0x02]).unwrap() },
        Reply::Error { address: 5, socket: 1, code: ViscaErrorCode::NotExecutable },
        Reply::AddressSet { next: 8 },
        Reply::NetworkChange { address: 7 },
    ];
    let noise = [0x00, 0x13, 0x90, 0x37, 0xFF, 0xA0, 0x7F];
    let mut out = Vec::with_capacity(1 << 20);
    let mut n = 0;
    while out.len() < 1 << 20 {
        let r = replies[n % replies.len()];
        out.extend_from_slice(r.to_bytes().as_slice());
        n += 1;
        if n % 16 == 0 {
            out.extend_from_slice(&noise);
        }
    }
    (out, n)
}

fn bench_encode(c: &mut Criterion) {
    let pk = packets();
    let bytes: usize = pk
        .iter()
        .map(|p| {
            let mut b = BytesMut::new();
            encode(p, &mut b);
            b.len()
        })
        .sum();
    let mut g = c.benchmark_group("encode");
    let mut buf = BytesMut::with_capacity(4096);
    g.throughput(Throughput::Elements(pk.len() as u64));
    g.bench_function("packets", |b| {
        b.iter(|| {
            buf.clear();
            for p in &pk {
                encode(black_box(p), &mut buf);
            }
            black_box(buf.len())
        })
    });
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("bytes", |b| {
        b.iter(|| {
            buf.clear();
            for p in &pk {
                encode(black_box(p), &mut buf);
            }
            black_box(buf.len())
        })
    });
    g.finish();
}

fn decode_all(stream: &[u8]) -> usize {
    let mut buf = BytesMut::from(stream);
    let mut n = 0;
    loop {
        match decode(&mut buf) {
            Ok(Some(r)) => {
                black_box(r);
                n += 1;
            }
            Ok(None) => return n,
            Err(_) => {}
        }
    }
}

fn bench_decode(c: &mut Criterion) {
    let (stream, count) = reply_stream();
    assert_eq!(decode_all(&stream), count, "every reply survives the noise");
    let mut g = c.benchmark_group("decode");
    g.sample_size(20);
    g.throughput(Throughput::Elements(count as u64));
    g.bench_function("packets", |b| b.iter(|| decode_all(black_box(&stream))));
    g.throughput(Throughput::Bytes(stream.len() as u64));
    g.bench_function("bytes", |b| b.iter(|| decode_all(black_box(&stream))));
    g.finish();
}

criterion_group!(benches, bench_encode, bench_decode);
criterion_main!(benches);
