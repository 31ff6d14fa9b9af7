//! The response reader against hostile and unusual inputs: every byte boundary, every framing,
//! every bound.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::ReadBuf;

use super::*;

/// A stream that hands its bytes over in the given read sizes (the last one repeated), then
/// ends.
struct Trickle {
    data: Vec<u8>,
    at: usize,
    sizes: Vec<usize>,
    reads: usize,
}

impl Trickle {
    fn new(data: &[u8], sizes: &[usize]) -> Trickle {
        Trickle {
            data: data.to_vec(),
            at: 0,
            sizes: sizes.to_vec(),
            reads: 0,
        }
    }

    fn bytewise(data: &[u8]) -> Trickle {
        Trickle::new(data, &[1])
    }
}

impl AsyncRead for Trickle {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let size = this
            .sizes
            .get(this.reads)
            .or(this.sizes.last())
            .copied()
            .unwrap_or(usize::MAX);
        this.reads += 1;
        let n = size.min(buf.remaining()).min(this.data.len() - this.at);
        buf.put_slice(&this.data[this.at..this.at + n]);
        this.at += n;
        Poll::Ready(Ok(()))
    }
}

async fn read_from(io: &mut Trickle, head_request: bool) -> Result<(Read, Vec<u8>), ReadError> {
    let mut buf = InBuf::default();
    let read = read(io, &mut buf, head_request).await?;
    Ok((read, buf.filled().to_vec()))
}

async fn one(bytes: &[u8]) -> Result<Read, ReadError> {
    read_from(&mut Trickle::new(bytes, &[usize::MAX]), false)
        .await
        .map(|(r, _)| r)
}

fn body(r: &Read) -> &[u8] {
    &r.response.body
}

const NGINX: &[u8] =
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Tue, 01 Dec 2026 10:00:00 GMT\r\n\
Content-Type: text/plain\r\nContent-Length: 13\r\nLast-Modified: Tue, 01 Dec 2026 09:00:00 GMT\r\n\
Connection: keep-alive\r\nETag: \"1-d\"\r\nAccept-Ranges: bytes\r\n\r\nhello, world\n";

const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n\
5;ext=\"a b\"\r\nhello\r\n1 ; x\r\n,\r\n6\r\n world\r\n0;last\r\nX-Trailer: yes\r\nX-Other: 2\r\n\r\n";

#[tokio::test]
async fn a_response_split_at_every_byte_boundary_reads_the_same() {
    for whole in [NGINX, CHUNKED] {
        let expected = one(whole).await.expect("whole");
        assert!(expected.reusable);
        let (r, rest) = read_from(&mut Trickle::bytewise(whole), false)
            .await
            .expect("one byte per read");
        assert_eq!((r.response.status, body(&r)), (200, body(&expected)));
        assert_eq!(r.response.headers, expected.response.headers);
        assert!(r.reusable && rest.is_empty());
        for k in 1..whole.len() {
            let (r, _) = read_from(&mut Trickle::new(whole, &[k, usize::MAX]), false)
                .await
                .expect("two reads");
            assert_eq!(body(&r), body(&expected), "split at {k}");
            assert!(r.reusable, "split at {k}");
        }
    }
    assert_eq!(body(&one(NGINX).await.expect("nginx")), b"hello, world\n");
    assert_eq!(body(&one(CHUNKED).await.expect("chunked")), b"hello, world");
}

#[tokio::test]
async fn headers_are_found_in_any_case_and_only_text_reads_as_text() {
    let r = one(b"HTTP/1.1 429 Too Many\r\nRetry-After:  7 \r\nX-Bin: a\xffb\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\ncontent-length: 0\r\n\r\n")
        .await
        .expect("a response");
    let h = &r.response.headers;
    assert_eq!(r.response.status, 429);
    assert_eq!(h.get_str("retry-after"), Some("7"));
    assert_eq!(h.get_str("RETRY-AFTER"), Some("7"));
    assert_eq!(h.get("x-bin"), Some(&b"a\xffb"[..]));
    assert_eq!(h.get_str("x-bin"), None, "not text");
    assert_eq!(h.get_str("set-cookie"), Some("a=1"), "the first of two");
    assert!(!h.contains("x-missing"));
    let names: Vec<&str> = h.iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "Retry-After",
            "X-Bin",
            "Set-Cookie",
            "set-cookie",
            "content-length"
        ]
    );
    let built: Headers = [("Retry-After", "7")].into_iter().collect();
    assert_eq!(built.get_str("retry-after"), Some("7"));
    let none = one(b"HTTP/1.1 204 No Content\r\n\r\n")
        .await
        .expect("no headers");
    assert_eq!(none.response.headers.iter().count(), 0);
}

#[tokio::test]
async fn informational_answers_before_the_real_one_are_skipped() {
    let r = one(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok")
        .await
        .expect("the final answer");
    assert_eq!((r.response.status, body(&r)), (201, &b"ok"[..]));
    assert!(
        !r.response.headers.contains("link"),
        "the final answer's headers"
    );
    assert!(r.reusable);
    // 101 is final: no body, and the connection is no longer HTTP.
    let r = one(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n")
        .await
        .expect("101");
    assert_eq!(
        (r.response.status, body(&r), r.reusable),
        (101, &b""[..], false)
    );
}

#[tokio::test]
async fn head_204_and_304_have_no_body_whatever_they_say() {
    let (r, rest) = read_from(
        &mut Trickle::new(
            b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n",
            &[usize::MAX],
        ),
        true,
    )
    .await
    .expect("a HEAD response");
    assert_eq!((body(&r), r.reusable, rest.len()), (&b""[..], true, 0));
    for status in ["204 No Content", "304 Not Modified"] {
        let text = format!("HTTP/1.1 {status}\r\nContent-Length: 5\r\n\r\n");
        let r = one(text.as_bytes()).await.expect(status);
        assert_eq!((body(&r), r.reusable), (&b""[..], true), "{status}");
    }
    // Bytes after a bodiless answer are not the next answer.
    let r = one(b"HTTP/1.1 204 No Content\r\n\r\nhello")
        .await
        .expect("204");
    assert!(!r.reusable);
}

#[tokio::test]
async fn a_body_without_length_runs_to_the_end_and_the_connection_is_not_reused() {
    let (r, _) = read_from(
        &mut Trickle::bytewise(b"HTTP/1.1 200 OK\r\n\r\nuntil the end"),
        false,
    )
    .await
    .expect("close-delimited");
    assert_eq!((body(&r), r.reusable), (&b"until the end"[..], false));
    // HTTP/1.0 closes unless asked to keep alive; `Connection: close` closes HTTP/1.1.
    let r = one(b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx")
        .await
        .expect("1.0");
    assert!(!r.reusable);
    let r = one(b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\nx")
        .await
        .expect("1.0 kept alive");
    assert!(r.reusable);
    let r = one(b"HTTP/1.1 200 OK\r\nConnection: foo, close\r\nContent-Length: 1\r\n\r\nx")
        .await
        .expect("closing");
    assert_eq!((body(&r), r.reusable), (&b"x"[..], false));
    // A coding other than chunked last: the body runs to the end too.
    let r = one(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nzz")
        .await
        .expect("gzip last");
    assert_eq!((body(&r), r.reusable), (&b"zz"[..], false));
    // Both framings: chunked wins, and the connection is not trusted again.
    let r = one(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n")
        .await
        .expect("both");
    assert_eq!((body(&r), r.reusable), (&b"a"[..], false));
}

#[tokio::test]
async fn bytes_after_the_response_are_left_and_the_connection_is_not_reused() {
    let mut two = NGINX.to_vec();
    two.extend_from_slice(NGINX);
    let (r, rest) = read_from(&mut Trickle::new(&two, &[usize::MAX]), false)
        .await
        .expect("the first");
    assert_eq!(body(&r), b"hello, world\n");
    assert!(!r.reusable);
    assert_eq!(rest, NGINX, "the rest is left, not read as an answer");
}

#[tokio::test]
async fn broken_chunked_bodies_are_malformed() {
    for bad in [
        &b"zz\r\nhello\r\n0\r\n\r\n"[..],
        b"-5\r\nhello\r\n0\r\n\r\n",
        b"5\r\nhello world\r\n0\r\n\r\n",
        b"10000000000000000\r\n",
        b"5 x\r\nhello\r\n0\r\n\r\n",
    ] {
        let mut text = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        text.extend_from_slice(bad);
        let e = one(&text).await.expect_err("malformed");
        assert!(matches!(e, ReadError::Malformed(_)), "{e:?}");
    }
    // A chunk-size line that never ends is bounded.
    let mut endless = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;".to_vec();
    endless.extend(std::iter::repeat_n(b'x', 10_000));
    assert!(matches!(one(&endless).await, Err(ReadError::Malformed(_))));
}

#[tokio::test]
async fn what_is_not_http_is_malformed_and_an_early_end_is_not() {
    for bad in [
        &b"HELLO THERE\r\n\r\n"[..],
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\nab",
    ] {
        let e = one(bad).await.expect_err("malformed");
        assert!(matches!(e, ReadError::Malformed(_)), "{e:?}");
    }
    let same = one(b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nab").await;
    assert_eq!(body(&same.expect("repeated length")), b"ab");
    // Before the head is whole, the server has not answered (a retry on `connect` may send the
    // request again); after it, the answer was cut short (the target's protocol error).
    for early in [&b""[..], b"HTTP/1.1 200 OK\r\nContent-Le"] {
        let e = read_from(&mut Trickle::bytewise(early), false)
            .await
            .expect_err("cut short");
        assert!(matches!(e, ReadError::Eof), "{e:?}");
    }
    for in_body in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel"[..],
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\r\n",
    ] {
        let e = read_from(&mut Trickle::bytewise(in_body), false)
            .await
            .expect_err("cut short");
        assert!(
            matches!(&e, ReadError::Malformed(m) if m.contains("200 response was cut short")),
            "{e:?}"
        );
    }
}

#[tokio::test]
async fn heads_and_bodies_over_their_bounds_are_refused() {
    let mut big_head = b"HTTP/1.1 200 OK\r\nX-Filler: ".to_vec();
    big_head.extend(std::iter::repeat_n(b'f', MAX_HEAD));
    big_head.extend_from_slice(b"\r\n\r\n");
    let e = one(&big_head).await.expect_err("too large a head");
    assert!(
        matches!(&e, ReadError::Malformed(m) if m.contains("64 KiB")),
        "{e:?}"
    );
    let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..=MAX_HEADERS {
        many.extend_from_slice(format!("X-{i}: 1\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    let e = one(&many).await.expect_err("too many headers");
    assert!(
        matches!(&e, ReadError::Malformed(m) if m.contains("too many headers")),
        "{e:?}"
    );
    let over = MAX_BODY + 1;
    let e = one(format!("HTTP/1.1 200 OK\r\nContent-Length: {over}\r\n\r\n").as_bytes())
        .await
        .expect_err("too large a declared body");
    assert!(matches!(e, ReadError::TooLarge(_)), "{e:?}");
    let mut chunked = format!(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
        MAX_BODY
    )
    .into_bytes();
    chunked.extend(std::iter::repeat_n(b'a', MAX_BODY));
    chunked.extend_from_slice(b"\r\n1\r\na\r\n0\r\n\r\n");
    assert!(matches!(one(&chunked).await, Err(ReadError::TooLarge(_))));
    let mut to_end = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
    to_end.extend(std::iter::repeat_n(b'a', over));
    assert!(matches!(one(&to_end).await, Err(ReadError::TooLarge(_))));
    // Exactly the limit is fine.
    let mut at = format!("HTTP/1.1 200 OK\r\nContent-Length: {MAX_BODY}\r\n\r\n").into_bytes();
    at.extend(std::iter::repeat_n(b'a', MAX_BODY));
    let r = read_from(&mut Trickle::new(&at, &[100, 7000]), false)
        .await
        .expect("at the limit");
    assert_eq!(r.0.response.body.len(), MAX_BODY);
}
