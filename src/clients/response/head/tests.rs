//! The scan takes only heads `httparse` takes, and reads them as `httparse` does.

use std::mem::MaybeUninit;

use super::*;

/// What `httparse` makes of `bytes`: `None` unless a whole head, else its length, status,
/// version and headers (names, trimmed values).
type Parsed = (usize, u16, bool, Vec<(Vec<u8>, Vec<u8>)>);

fn httparse_head(bytes: &[u8]) -> Option<Parsed> {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut resp, bytes, &mut slots)
    {
        Ok(httparse::Status::Complete(len)) => len,
        _ => return None,
    };
    let headers = resp
        .headers
        .iter()
        .map(|h| (h.name.as_bytes().to_vec(), trim(h.value).to_vec()))
        .collect();
    Some((len, resp.code?, resp.version == Some(0), headers))
}

/// The scan of `bytes` in the same terms, with the header lines it told.
fn scanned(bytes: &[u8]) -> Option<Parsed> {
    #[derive(Default)]
    struct Seen(Vec<(Vec<u8>, Vec<u8>)>);
    let mut said = Said::default();
    let s = scan(bytes, &mut said)?;
    // The lines again, from the first header to the end of the last.
    let mut seen = Seen::default();
    if let Some(from) = s.first_header {
        for line in bytes[from..s.len - 2]
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
        {
            let line = line.strip_suffix(b"\r").expect("CRLF lines only");
            let colon = line.iter().position(|&b| b == b':').expect("a colon");
            seen.0
                .push((line[..colon].to_vec(), trim(&line[colon + 1..]).to_vec()));
        }
    }
    Some((s.len, s.status, s.http10, seen.0))
}

/// Checks the subset rule on `bytes` and every prefix of it; whether the scan took it whole.
fn agrees(bytes: &[u8]) -> bool {
    for end in 0..=bytes.len() {
        if let Some(s) = scanned(&bytes[..end]) {
            assert_eq!(
                Some(&s),
                httparse_head(&bytes[..end]).as_ref(),
                "{:?}",
                String::from_utf8_lossy(&bytes[..end])
            );
        }
    }
    scanned(bytes).is_some()
}

const COMMON: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 15\r\ndate: Wed, 02 Dec 2026 07:57:08 GMT\r\n\r\n{\"status\":\"ok\"}";

#[test]
fn the_common_heads_are_scanned_and_read_as_httparse_reads_them() {
    for head in [
        COMMON,
        b"HTTP/1.0 404 Not Found\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 204 \r\n\r\n",
        b"HTTP/1.1 599 Odd\tReason\r\nX-A:\r\nX-B:  spaced \t \r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        b"HTTP/1.1 000 zero\r\n!#$%&'*+-.^_`|~09azAZ: v\r\n\r\n",
    ] {
        assert!(agrees(head), "{:?}", String::from_utf8_lossy(head));
    }
}

#[test]
fn other_shapes_are_left_to_httparse() {
    for head in [
        &b"HTTP/1.1 200 OK\nA: b\n\n"[..],
        b"HTTP/1.1 200 OK\r\nA: b\n\r\n",
        b"HTTP/1.1 200\r\n\r\n",
        b"\r\nHTTP/1.1 200 OK\r\n\r\n",
        b"HTTP/2.0 200 OK\r\n\r\n",
        b"HTTP/1.2 200 OK\r\n\r\n",
        b"HTTP/1.1 20x OK\r\n\r\n",
        b"HTTP/1.1  200 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nA : b\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n: b\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nA: caf\xc3\xa9\r\n\r\n",
        b"HTTP/1.1 200 Caf\xc3\xa9\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nA: b\x7f\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nA: b\x00c\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nA(: b\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n\r",
    ] {
        assert!(!agrees(head), "{:?}", String::from_utf8_lossy(head));
    }
    // One header over the bound: httparse's error, not the scan's.
    let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..MAX_HEADERS {
        many.extend_from_slice(format!("h{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    assert!(agrees(&many), "exactly the bound");
    let more = [&many[..many.len() - 2], b"x: y\r\n\r\n"].concat();
    assert!(scanned(&more).is_none() && httparse_head(&more).is_none());
}

#[test]
fn text_ends_where_a_byte_by_byte_look_says_at_every_position_and_byte() {
    let reference = |bytes: &[u8], at: usize| {
        for (i, &b) in bytes.iter().enumerate().skip(at) {
            match b {
                b'\r' => return Some(i),
                b'\t' | b' '..=b'~' => {}
                _ => return None,
            }
        }
        None
    };
    for b in 0..=255u8 {
        for pos in 0..20 {
            for len in [pos + 1, 20, 24] {
                let mut bytes = vec![b'a'; len];
                bytes[pos] = b;
                bytes.push(b'\r');
                for at in [0, 1, 3] {
                    assert_eq!(
                        text_end(&bytes, at),
                        reference(&bytes, at),
                        "byte {b:#x} at {pos} of {len}, from {at}"
                    );
                }
            }
        }
    }
}

#[test]
fn mutated_heads_are_scanned_only_as_httparse_reads_them() {
    // Every byte of the common head replaced by each of a set of telling bytes, and each byte
    // removed or doubled: whatever the scan takes, httparse takes the same way.
    let telling = b"\r\n\t :,0aZ\x00\x7f\x80\xff(/";
    let head = &COMMON[..COMMON.len() - 15];
    let mut taken = 0;
    for i in 0..head.len() {
        for &b in telling {
            let mut m = head.to_vec();
            m[i] = b;
            taken += usize::from(agrees(&m));
        }
        let mut removed = head.to_vec();
        removed.remove(i);
        agrees(&removed);
        let mut doubled = head.to_vec();
        doubled.insert(i, head[i]);
        agrees(&doubled);
    }
    // Most replacements inside values keep a head the scan takes: the check above ran on them.
    assert!(taken > head.len(), "{taken}");
}

#[test]
fn said_is_what_the_framing_headers_say_in_order() {
    let mut said = Said::default();
    let head = b"HTTP/1.1 200 OK\r\nCONTENT-LENGTH: 5\r\nconnection: Keep-Alive, close\r\nTransfer-Encoding: chunked\r\nContent-Length: 5, 5\r\n\r\n";
    assert!(scan(head, &mut said).is_some());
    assert_eq!(said.length, Some(5));
    assert!(said.encoded && said.chunked && said.close && said.keep_alive);
    assert!(said.error.is_none());
    let mut said = Said::default();
    let head =
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\nContent-Length: x\r\n\r\n";
    assert!(scan(head, &mut said).is_some());
    assert!(
        matches!(&said.error, Some(ReadError::Malformed(m)) if m == "conflicting content-length"),
        "the first error: {:?}",
        said.error
    );
}

#[test]
fn a_name_is_compared_as_eq_ignore_ascii_case_compares_token_names() {
    for lower in [&b"content-length"[..], b"transfer-encoding", b"connection"] {
        for at in 0..lower.len() {
            for b in (0..=255u8).filter(|&b| TOKEN[usize::from(b)]) {
                let mut name = lower.to_vec();
                name[at] = b;
                assert_eq!(
                    is_name(&name, lower),
                    name.eq_ignore_ascii_case(lower),
                    "{:?}",
                    String::from_utf8_lossy(&name)
                );
            }
        }
        assert!(!is_name(&lower[1..], lower), "a shorter name");
    }
}

#[test]
fn a_name_ends_where_a_byte_by_byte_look_says_at_every_position_and_byte() {
    let reference =
        |bytes: &[u8], at: usize| (at..bytes.len()).find(|&i| !TOKEN[usize::from(bytes[i])]);
    for b in 0..=255u8 {
        for pos in 0..20 {
            for len in [pos + 1, 20, 24] {
                let mut bytes: Vec<u8> = (0..len).map(|i| b"aZ0-x_Q9"[i % 8]).collect();
                bytes[pos] = b;
                bytes.push(b':');
                for at in [0, 1, 5] {
                    assert_eq!(
                        name_end(&bytes, at),
                        reference(&bytes, at),
                        "byte {b:#x} at {pos} of {len}, from {at}"
                    );
                }
            }
        }
    }
}
