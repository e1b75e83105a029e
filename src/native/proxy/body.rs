//! The request body hyper sends upstream ([`ProxyBody`]): none, or the
//! client's, handed over piece by piece by the serving thread only once
//! hyper first asks for it, so nothing is read from the client before a
//! connection to an upstream is open (a request whose upstream cannot be
//! reached goes to the next one with its body untouched).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::{mpsc, Notify};

/// A piece of the client's body on its way to hyper.
pub enum Piece {
    Data(Bytes),
    End,
    Failed(String),
}

/// The request body hyper sends: none, or the client's, handed over piece
/// by piece by the serving thread once hyper first asks (`asked`).
pub enum ProxyBody {
    Empty,
    Pipe {
        rx: mpsc::Receiver<Piece>,
        asked: Arc<Notify>,
        polled: bool,
        ended: bool,
    },
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let ProxyBody::Pipe {
            rx,
            asked,
            polled,
            ended,
        } = self.get_mut()
        else {
            return Poll::Ready(None);
        };
        if *ended {
            return Poll::Ready(None);
        }
        if !*polled {
            *polled = true;
            asked.notify_one();
        }
        match rx.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Piece::Data(b))) => Poll::Ready(Some(Ok(Frame::data(b)))),
            Poll::Ready(Some(Piece::End)) => {
                *ended = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Piece::Failed(e))) => Poll::Ready(Some(Err(io::Error::other(e)))),
            Poll::Ready(None) => Poll::Ready(Some(Err(io::Error::other(
                "the client's body was not forwarded to its end",
            )))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, ProxyBody::Empty)
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Empty => SizeHint::with_exact(0),
            ProxyBody::Pipe { .. } => SizeHint::default(),
        }
    }
}
