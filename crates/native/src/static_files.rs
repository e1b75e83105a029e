//! `--static PREFIX=DIR`: files under a directory, answered in Rust with
//! `sendfile(2)`, the same way the portable `qiao.middleware.Static`
//! answers (its module doc states the rules; this follows them one by
//! one): `Content-Type`, `ETag`/`Last-Modified`, the preconditions (412,
//! 304), one byte range (206/416, `If-Range`), `HEAD`, precompressed
//! `.br`/`.gz` siblings by `Accept-Encoding`, `Cache-Control`, a directory
//! answered with its index after a 301 to the slashed path.
//!
//! No way out of the directory: a NUL or backslash in the decoded path, or
//! an encoded `/`, `\` or NUL in the raw one, is 400; a `..` segment, a
//! hidden name (starting with `.`, unless `--static-hidden`), a path whose
//! real location (symlinks resolved) lies outside the directory, a missing
//! file and anything not a regular file are all 404. Files are opened
//! `O_NOFOLLOW | O_NONBLOCK` and checked again with `fstat`, so a swap
//! after the check cannot serve a FIFO or hang the thread.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;

use qiao_http::conditional::{evaluate_preconditions, Conditions, Method, Verdict};
use qiao_http::fields;
mod resolve;

use super::runtime::{Client, JobTask, NativeRuntime};
use super::{header, method, outcome, plain_buffered, start};
use qiao_http::request::percent_decode;
use qiao_http::response::{BodyMode, Plan};
use qiao_io::handoff::{DoneSink, OpenJob};
use qiao_io::native_service::NativeService;
use qiao_io::record::Recorder;
use qiao_io::service::{Exchange, Outcome};
use qiao_io::sock;

/// `Cache-Control` of a file unless configured: an hour, then revalidate.
pub(crate) const DEFAULT_CACHE_CONTROL: &str = "public, max-age=3600";
/// Index file of a directory unless configured.
pub(crate) const DEFAULT_INDEX: &str = "index.html";
/// Precompressed siblings looked for, by coding, in order of preference.
const PRECOMPRESSED: [(&str, &str); 2] = [("br", ".br"), ("gzip", ".gz")];
/// Bytes `quote()` leaves as they are in a redirect's `Location` (Python's
/// always-safe set plus `/`).
const LOCATION_SAFE: &[u8] = b"_.-~/";

/// The `ETag` a file gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EtagMode {
    Strong,
    Weak,
    Off,
}

/// How files are answered (the portable class's keyword arguments).
#[derive(Clone, Debug)]
pub struct StaticOptions {
    /// File served for a directory; None: directories are 404.
    pub index: Option<String>,
    /// None: no `Cache-Control` header.
    pub cache_control: Option<String>,
    pub etag: EtagMode,
    /// Serve names starting with `.` (`--static-hidden`).
    pub hidden: bool,
    /// `Content-Type` by extension (`--static-type EXT=TYPE`): lower-case
    /// extensions with their dot, before the built-in table.
    pub types: Vec<(String, String)>,
}

impl Default for StaticOptions {
    fn default() -> Self {
        StaticOptions {
            index: Some(DEFAULT_INDEX.into()),
            cache_control: Some(DEFAULT_CACHE_CONTROL.into()),
            etag: EtagMode::Strong,
            hidden: false,
            types: Vec::new(),
        }
    }
}

/// Why a request gets no file: the status (and its extra headers).
struct Refuse(u16, &'static str, Vec<(&'static [u8], Vec<u8>)>);

impl Refuse {
    fn status(code: u16, reason: &'static str) -> Self {
        Refuse(code, reason, Vec::new())
    }
}

fn not_found() -> Refuse {
    Refuse::status(404, "Not Found")
}

/// One `--static` route.
pub(crate) struct StaticFiles {
    /// The URL prefix, normalized (no trailing `/`).
    prefix: Vec<u8>,
    /// The directory, canonical.
    root: PathBuf,
    opts: StaticOptions,
    /// Where requests are served without blocking a thread, if any.
    runtime: Option<Arc<NativeRuntime>>,
    recorder: Recorder,
}

impl StaticFiles {
    /// Serves `dir` under `prefix`; fails if `dir` is not a directory.
    pub(crate) fn new(
        prefix: &str,
        dir: &str,
        opts: StaticOptions,
        runtime: Option<Arc<NativeRuntime>>,
        recorder: Recorder,
    ) -> std::io::Result<Self> {
        let root = std::fs::canonicalize(dir)?;
        if !root.is_dir() {
            return Err(std::io::Error::other(format!(
                "static directory {dir:?} is not a directory"
            )));
        }
        Ok(StaticFiles {
            prefix: prefix.trim_end_matches('/').as_bytes().to_vec(),
            root,
            opts,
            runtime,
            recorder,
        })
    }

    fn answer(&self, ex: &mut Exchange<'_>) -> Result<Reply, Refuse> {
        let m = method(ex);
        if m != b"GET" && m != b"HEAD" {
            return Err(Refuse(
                405,
                "Method Not Allowed",
                vec![(b"Allow", b"GET, HEAD".to_vec())],
            ));
        }
        let raw = ex.bytes(&ex.head.path).to_vec();
        let mut path = Vec::new();
        percent_decode(if raw.is_empty() { b"/" } else { &raw }, &mut path);
        let real = self.resolve(ex, &raw, &path)?;
        let (file, meta, coding, vary) = self.choose(ex, &real)?;
        let size = meta.len();
        let mtime = meta.mtime();
        let etag = match self.opts.etag {
            EtagMode::Off => None,
            mode => {
                let ns = i128::from(mtime) * 1_000_000_000 + i128::from(meta.mtime_nsec());
                let ns = if ns < 0 {
                    format!("-{:x}", -ns)
                } else {
                    format!("{ns:x}")
                };
                let suffix = coding.map(|c| format!("-{c}")).unwrap_or_default();
                let tag = format!("\"{size:x}-{ns}-{:x}{suffix}\"", meta.ino());
                Some(if mode == EtagMode::Weak {
                    format!("W/{tag}")
                } else {
                    tag
                })
            }
        };
        let last_modified = fields::http_date(mtime);
        let mut headers: Vec<(&[u8], Vec<u8>)> = vec![(b"Accept-Ranges", b"bytes".to_vec())];
        if let Some(tag) = &etag {
            headers.push((b"ETag", tag.clone().into_bytes()));
        }
        headers.push((b"Last-Modified", last_modified.into_bytes()));
        if let Some(cache) = &self.opts.cache_control {
            headers.push((b"Cache-Control", cache.clone().into_bytes()));
        }
        if vary {
            headers.push((b"Vary", b"Accept-Encoding".to_vec()));
        }

        // RFC 9110 §13.2.2, in the one order both Static sides share.
        let (if_match, if_none_match) = (header(ex, b"if-match"), header(ex, b"if-none-match"));
        let if_modified_since = header(ex, b"if-modified-since");
        let if_unmodified_since = header(ex, b"if-unmodified-since");
        let (range, if_range) = (header(ex, b"range"), header(ex, b"if-range"));
        let conditions = Conditions {
            if_match: if_match.as_deref(),
            if_none_match: if_none_match.as_deref(),
            if_modified_since: if_modified_since.as_deref(),
            if_unmodified_since: if_unmodified_since.as_deref(),
            range: range.as_deref(),
            if_range: if_range.as_deref(),
        };
        let verdict =
            evaluate_preconditions(Method::of(m), &conditions, etag.as_deref(), mtime, size);
        let (status, reason, window) = match verdict {
            Verdict::PreconditionFailed => return Err(Refuse::status(412, "Precondition Failed")),
            Verdict::NotModified => return Ok(head(ex, 304, "Not Modified", &headers, None, file)),
            Verdict::RangeNotSatisfiable => {
                return Err(Refuse(
                    416,
                    "Range Not Satisfiable",
                    vec![
                        (b"Content-Range", format!("bytes */{size}").into_bytes()),
                        (b"Accept-Ranges", b"bytes".to_vec()),
                    ],
                ))
            }
            Verdict::Partial(first, last) => (206, "Partial Content", (first, last - first + 1)),
            Verdict::Full => (200, "OK", (0, size)),
        };

        let name = real
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        headers.push((
            b"Content-Type",
            super::mime::content_type(&name, &self.opts.types).into_bytes(),
        ));
        if let Some(c) = coding {
            headers.push((b"Content-Encoding", c.as_bytes().to_vec()));
        }
        if let Verdict::Partial(first, last) = verdict {
            let range = format!("bytes {first}-{last}/{size}");
            headers.push((b"Content-Range", range.into_bytes()));
        }
        Ok(head(ex, status, reason, &headers, Some(window), file))
    }
}

impl StaticFiles {
    /// The answer, its head written into the output buffer.
    fn reply(&self, ex: &mut Exchange<'_>) -> Reply {
        match self.answer(ex) {
            Ok(reply) => reply,
            Err(Refuse(code, reason, extra)) => {
                let extra: Vec<(&[u8], &[u8])> =
                    extra.iter().map(|(n, v)| (*n, v.as_slice())).collect();
                let plan = plain_buffered(ex, code, reason, &format!("{reason}\n"), &extra);
                Reply {
                    plan,
                    status: code,
                    body: None,
                }
            }
        }
    }

    /// Serves a job on the native runtime: the same answer, written
    /// without blocking a thread while the client's socket is full.
    async fn serve_job(&self, job: &mut OpenJob) -> Outcome {
        let mut client = Client::new(job.wire().clone(), job.io_timeout());
        let mut ex = job.exchange();
        let started = self.recorder.start(&ex);
        let reply = self.reply(&mut ex);
        let mut buf = std::mem::take(ex.out.buffer());
        let ok = match &reply.body {
            Some((file, first, n)) => {
                client.cork(true);
                let ok = client.write_all(&mut buf).await
                    && client.sendfile(file.as_raw_fd(), *first, *n).await;
                client.cork(false);
                ok
            }
            None => client.write_all(&mut buf).await,
        };
        buf.clear();
        *ex.out.buffer() = buf;
        let done = if ok {
            outcome(&ex, &reply.plan)
        } else {
            Outcome::Close
        };
        // No chunk framing here: the body is what follows the head.
        let body = ex.out.body_of(client.sent());
        self.recorder.done(started, reply.status, 0, body);
        done
    }
}

impl NativeService for StaticFiles {
    fn serve(&self, ex: &mut Exchange<'_>) -> (Outcome, u16) {
        let reply = self.reply(ex);
        let mut wait = sock::wait;
        let ok = match &reply.body {
            Some((file, first, n)) => ex
                .out
                .sendfile(file.as_raw_fd(), *first, *n)
                .is_ok_and(|sent| sent == *n),
            None => ex.out.flush(&mut wait).is_ok(),
        };
        if ok {
            (outcome(ex, &reply.plan), reply.status)
        } else {
            // A short file (truncated meanwhile) breaks the promised length.
            (Outcome::Close, reply.status)
        }
    }

    fn spawn(self: Arc<Self>, job: OpenJob, sink: DoneSink) -> Option<OpenJob> {
        let Some(runtime) = self.runtime.clone() else {
            return Some(job);
        };
        runtime.spawn(async move {
            let mut task = JobTask::new(job, sink);
            let outcome = self.serve_job(task.job()).await;
            task.finish(outcome);
        });
        None
    }
}

/// An answer whose head is in the output buffer: its framing, status and
/// the window of the file to send after it, if any.
struct Reply {
    plan: Plan,
    status: u16,
    body: Option<(File, u64, u64)>,
}

/// Writes the head (with `Content-Length` of the window) into the output
/// buffer; the window of `file` (`(first, length)`; None: no body, as for
/// 304) is sent after it.
fn head(
    ex: &mut Exchange<'_>,
    status: u16,
    reason: &str,
    headers: &[(&[u8], Vec<u8>)],
    window: Option<(u64, u64)>,
    file: File,
) -> Reply {
    let length = window.map(|(_, n)| itoa::Buffer::new().format(n).to_owned());
    let mut fields: Vec<(&[u8], &[u8])> = headers.iter().map(|(n, v)| (*n, v.as_slice())).collect();
    if let Some(len) = &length {
        fields.push((b"Content-Length", len.as_bytes()));
    }
    let plan = start(
        ex,
        status,
        reason.as_bytes(),
        &fields,
        window.map(|(_, n)| n),
    );
    let body = match (plan.mode, window) {
        (BodyMode::Length(_), Some((first, n))) if n > 0 => Some((file, first, n)),
        _ => None,
    };
    Reply { plan, status, body }
}
