//! Why a request was refused, and the one place that maps each reason to
//! its RFC 9112 / RFC 9110 status code (as hyper maps its parse errors).
//!
//! Every variant ends the connection: after a framing error nothing that
//! follows on the socket can be trusted to be the start of a request.

use std::fmt;

/// A request the HTTP ring refuses. See [`ParseError::status`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Request line not `method SP target SP HTTP/x.y`.
    BadRequestLine,
    /// Method is not a token.
    BadMethod,
    /// Request target is not origin-, absolute- or asterisk-form.
    BadTarget,
    /// Version is not of the form `HTTP/DIGIT.DIGIT`.
    BadVersion,
    /// Well-formed version other than HTTP/1.0 or HTTP/1.1 (HTTP/2 preface included).
    VersionNotSupported,
    /// Request line longer than `Limits::request_line`.
    RequestLineTooLong,
    /// A field line that is not `token ":" OWS value OWS` (whitespace before
    /// the colon, obs-fold, control characters, bare CR, empty name).
    BadHeader,
    /// More fields than `Limits::header_fields`.
    TooManyHeaders,
    /// A field line longer than `Limits::field_size`, or a head larger than
    /// the limits allow in total.
    HeaderTooLarge,
    /// HTTP/1.1 request without Host.
    MissingHost,
    /// More than one Host field.
    DuplicateHost,
    /// Content-Length that is not 1*DIGIT, or too large.
    BadContentLength,
    /// Several Content-Length values that differ.
    ConflictingContentLength,
    /// Both Transfer-Encoding and Content-Length.
    ContentLengthWithTransferEncoding,
    /// Transfer-Encoding on an HTTP/1.0 request.
    TransferEncodingOnHttp10,
    /// Transfer-Encoding whose final coding is not chunked, chunked twice,
    /// or an empty list.
    BadTransferEncoding,
    /// A transfer coding we do not implement (anything but chunked).
    UnsupportedTransferCoding,
    /// A method we do not implement (CONNECT: this is not a proxy).
    MethodNotImplemented,
    /// Body larger than `Limits::max_body`.
    BodyTooLarge,
    /// Chunk size line is not 1*HEXDIG, is too large, or is not followed by CRLF.
    BadChunkSize,
    /// Chunk data not followed by CRLF.
    BadChunkData,
    /// Chunk extensions malformed or over `MAX_CHUNK_EXT_BYTES`.
    BadChunkExtension,
    /// Trailer section malformed or over `MAX_TRAILER_BYTES`.
    BadTrailer,
    /// `--proxy-protocol`: the connection does not start with a valid
    /// PROXY v1/v2 header, or its sender is not a trusted proxy.
    BadProxyHeader,
}

impl ParseError {
    /// The status code this error is answered with.
    pub fn status(self) -> u16 {
        use ParseError::*;
        match self {
            RequestLineTooLong => 414,
            TooManyHeaders | HeaderTooLarge => 431,
            VersionNotSupported => 505,
            UnsupportedTransferCoding | MethodNotImplemented => 501,
            BodyTooLarge => 413,
            BadRequestLine
            | BadMethod
            | BadTarget
            | BadVersion
            | BadHeader
            | MissingHost
            | DuplicateHost
            | BadContentLength
            | ConflictingContentLength
            | ContentLengthWithTransferEncoding
            | TransferEncodingOnHttp10
            | BadTransferEncoding
            | BadChunkSize
            | BadChunkData
            | BadChunkExtension
            | BadTrailer
            | BadProxyHeader => 400,
        }
    }

    /// A short human explanation, used in the response body and in logs.
    pub fn message(self) -> &'static str {
        use ParseError::*;
        match self {
            BadRequestLine => "malformed request line",
            BadMethod => "invalid method",
            BadTarget => "invalid request target",
            BadVersion => "malformed HTTP version",
            VersionNotSupported => "HTTP version not supported",
            RequestLineTooLong => "request line too long",
            BadHeader => "malformed header field",
            TooManyHeaders => "too many header fields",
            HeaderTooLarge => "header field too large",
            MissingHost => "missing Host header",
            DuplicateHost => "more than one Host header",
            BadContentLength => "invalid Content-Length",
            ConflictingContentLength => "conflicting Content-Length values",
            ContentLengthWithTransferEncoding => "both Transfer-Encoding and Content-Length",
            TransferEncodingOnHttp10 => "Transfer-Encoding in an HTTP/1.0 request",
            BadTransferEncoding => "invalid Transfer-Encoding",
            UnsupportedTransferCoding => "unsupported transfer coding",
            MethodNotImplemented => "method not implemented",
            BodyTooLarge => "request body too large",
            BadChunkSize => "invalid chunk size line",
            BadChunkData => "chunk data not followed by CRLF",
            BadChunkExtension => "invalid or oversized chunk extension",
            BadTrailer => "invalid or oversized trailer section",
            BadProxyHeader => "missing or invalid PROXY protocol header",
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message(), self.status())
    }
}

impl std::error::Error for ParseError {}
