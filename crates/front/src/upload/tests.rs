use super::*;
use http_body_util::channel::Channel;
use http_body_util::BodyExt;
use hyper::header::HeaderValue;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn headers(fields: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in fields {
        h.append(*name, HeaderValue::from_static(value));
    }
    h
}

#[test]
fn only_a_declared_small_body_without_expect_is_taken() {
    assert_eq!(
        in_memory_length(&headers(&[("content-length", "10")])),
        Some(10)
    );
    assert_eq!(
        in_memory_length(&headers(&[("content-length", "0")])),
        Some(0)
    );
    let at_limit = BODY_IN_MEMORY.to_string();
    let mut h = HeaderMap::new();
    h.insert(CONTENT_LENGTH, at_limit.parse().unwrap());
    assert_eq!(in_memory_length(&h), Some(BODY_IN_MEMORY));
    h.insert(
        CONTENT_LENGTH,
        (BODY_IN_MEMORY + 1).to_string().parse().unwrap(),
    );
    assert_eq!(in_memory_length(&h), None);
    for fields in [
        &[][..],
        &[("content-length", "x")],
        &[("content-length", "-1")],
        &[("content-length", "5"), ("content-length", "5")],
        &[("content-length", "5"), ("expect", "100-continue")],
    ] {
        assert_eq!(in_memory_length(&headers(fields)), None, "{fields:?}");
    }
}

#[test]
fn a_body_that_comes_whole_is_appended_to_the_head() {
    rt().block_on(async {
        let (mut tx, mut body) = Channel::<Bytes>::new(4);
        let sender = tokio::spawn(async move {
            for piece in [&b"abc"[..], b"", b"defg", b"h"] {
                tx.send_data(Bytes::from_static(piece)).await.unwrap();
            }
        });
        let mut buf = b"HEAD\r\n\r\n".to_vec();
        // The wait is long: the pieces arrive as the sender task runs.
        let taken = take(&mut body, 8, Duration::from_secs(60), &mut buf).await;
        assert_eq!(taken, Taken::Whole);
        assert_eq!(buf, b"HEAD\r\n\r\nabcdefgh");
        sender.await.unwrap();
    });
}

#[test]
fn a_slow_body_goes_on_with_what_came_first_then_the_rest_in_order() {
    rt().block_on(async {
        let (mut tx, mut body) = Channel::<Bytes>::new(4);
        tx.send_data(Bytes::from_static(b"first ")).await.unwrap();
        let mut buf = b"H".to_vec();
        // No wait: the rest has not come, so what came goes on.
        let taken = take(&mut body, 20, Duration::ZERO, &mut buf).await;
        assert_eq!(taken, Taken::Partial);
        assert_eq!(buf, b"Hfirst ");
        let first = Bytes::from(buf).slice(1..);
        let upload = Upload::new(first, body);
        assert!(!upload.is_end_stream());
        assert_eq!(upload.size_hint().lower(), 6);
        let sender = tokio::spawn(async move {
            tx.send_data(Bytes::from_static(b"and the ")).await.unwrap();
            tx.send_data(Bytes::from_static(b"rest")).await.unwrap();
        });
        let all = upload.collect().await.unwrap().to_bytes();
        assert_eq!(&all[..], b"first and the rest");
        sender.await.unwrap();
    });
}

#[test]
fn nothing_taken_first_is_no_frame() {
    rt().block_on(async {
        let (tx, body) = Channel::<Bytes>::new(1);
        drop(tx);
        let mut upload = Upload::new(Bytes::new(), body);
        assert!(upload.frame().await.is_none());
    });
}

#[test]
fn a_body_other_than_declared_or_cut_fails() {
    rt().block_on(async {
        // Longer than declared.
        let (mut tx, mut body) = Channel::<Bytes>::new(2);
        tx.send_data(Bytes::from_static(b"12345")).await.unwrap();
        let mut buf = Vec::new();
        assert_eq!(
            take(&mut body, 4, Duration::from_secs(60), &mut buf).await,
            Taken::Failed
        );
        // Shorter: ended early.
        let (mut tx, mut body) = Channel::<Bytes>::new(2);
        tx.send_data(Bytes::from_static(b"123")).await.unwrap();
        drop(tx);
        let mut buf = Vec::new();
        assert_eq!(
            take(&mut body, 4, Duration::from_secs(60), &mut buf).await,
            Taken::Failed
        );
        // Aborted (a reset stream).
        let (mut tx, mut body) = Channel::<Bytes, std::io::Error>::new(2);
        tx.send_data(Bytes::from_static(b"12")).await.unwrap();
        tx.abort(std::io::Error::other("reset"));
        let mut buf = Vec::new();
        assert_eq!(
            take(&mut body, 4, Duration::from_secs(60), &mut buf).await,
            Taken::Failed
        );
    });
}

#[test]
fn a_connection_holds_at_most_its_budget_in_memory() {
    let budget = Budget::default();
    let a = budget
        .reserve(BODIES_IN_MEMORY_PER_CONNECTION - 10)
        .unwrap();
    let b = budget.reserve(10).unwrap();
    assert!(budget.reserve(1).is_none());
    drop(b);
    assert!(budget.reserve(11).is_none());
    let c = budget.reserve(10).unwrap();
    drop((a, c));
    assert!(budget.reserve(BODIES_IN_MEMORY_PER_CONNECTION).is_some());
}
