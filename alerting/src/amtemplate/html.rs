//! Contextual HTML escaping as Go's `html/template` does it for Alertmanager's HTML fields (email
//! `html`). Go rewrites the template tree statically; here the same context machine runs over the
//! template text as it is written, and every action's value is escaped for the context it lands
//! in: HTML text, RCDATA (`<title>`, `<textarea>`), quoted and unquoted attribute values, URL
//! attributes (filter, normalise before the query, escape inside it), `style`/CSS, `on*`/JS and
//! comments (elided). Template text gets Go's treatment too: HTML comments are dropped and a `<`
//! that opens no tag becomes `&lt;`. Pipelines ending in the `html` or `urlquery` builtins are
//! merged with the context's escapers the way Go merges them (see [`Predefined`]).

use crate::ruler::gotemplate::Value;

/// Go's `filterFailsafe`: what a value rejected by a filter becomes.
pub const FAILSAFE: &str = "ZgotmplZ";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    #[default]
    Text,
    Tag,
    AttrName,
    AfterName,
    BeforeValue,
    HtmlCmt,
    Rcdata,
    Attr,
    Url,
    Srcset,
    Js,
    JsDqStr,
    JsSqStr,
    JsBqStr,
    JsBlockCmt,
    JsLineCmt,
    Css,
    CssDqStr,
    CssSqStr,
    CssDqUrl,
    CssSqUrl,
    CssUrl,
    CssBlockCmt,
    CssLineCmt,
    Error,
}

impl State {
    fn is_comment(self) -> bool {
        matches!(
            self,
            State::HtmlCmt | State::JsBlockCmt | State::JsLineCmt | State::CssBlockCmt | State::CssLineCmt
        )
    }
    fn is_in_tag(self) -> bool {
        matches!(
            self,
            State::Tag | State::AttrName | State::AfterName | State::BeforeValue | State::Attr
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Delim {
    #[default]
    None,
    DoubleQuote,
    SingleQuote,
    SpaceOrTagEnd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum UrlPart {
    #[default]
    None,
    PreQuery,
    QueryOrFrag,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Element {
    #[default]
    None,
    Script,
    Style,
    Textarea,
    Title,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Attr {
    #[default]
    None,
    Script,
    ScriptType,
    Style,
    Url,
    Srcset,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Context {
    state: State,
    delim: Delim,
    url_part: UrlPart,
    element: Element,
    attr: Attr,
}

/// The content type of a value, from the typed strings Alertmanager's functions return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Content {
    Plain,
    Html,
    Url,
}

/// A predefined escaper a pipeline ended with (`{{ .X | urlquery }}`), passed to the escaper so
/// it can be merged with the context's escapers as Go's `ensurePipelineContains` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Predefined {
    Html,
    UrlQuery,
}

/// The escapers Go inserts, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Esc {
    UrlFilter,
    UrlNormalizer,
    UrlEscaper,
    CssEscaper,
    JsVal,
    JsStr,
    CssValue,
    HtmlText,
    Rcdata,
    HtmlName,
    Srcset,
    Comment,
    NoSpace,
    Attr,
    /// The builtin `html` moved into the chain.
    BuiltinHtml,
    /// The builtin `urlquery` moved into the chain.
    BuiltinUrlQuery,
}

impl Esc {
    fn equivalent(self, p: Predefined) -> bool {
        match p {
            Predefined::Html => matches!(self, Esc::Attr | Esc::HtmlText | Esc::Rcdata),
            Predefined::UrlQuery => matches!(self, Esc::UrlEscaper | Esc::UrlNormalizer),
        }
    }
}

/// The escaping state of one HTML rendering.
#[derive(Debug, Default)]
pub struct HtmlEscaper {
    ctx: Context,
    /// Go fails the execution on malformed HTML around an action; so do we.
    pub error: Option<String>,
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0c' | b'\r')
}

fn eat_ws(s: &[u8], i: usize) -> usize {
    let mut j = i;
    while j < s.len() && is_ws(s[j]) {
        j += 1;
    }
    j
}

fn find_any(s: &[u8], set: &[u8]) -> Option<usize> {
    s.iter().position(|b| set.contains(b))
}

fn find(s: &[u8], pat: &[u8]) -> Option<usize> {
    if pat.is_empty() || s.len() < pat.len() {
        return None;
    }
    s.windows(pat.len()).position(|w| w == pat)
}

fn eat_tag_name(s: &[u8], i: usize) -> (usize, Element) {
    if i >= s.len() || !s[i].is_ascii_alphabetic() {
        return (i, Element::None);
    }
    let mut j = i + 1;
    while j < s.len() {
        let x = s[j];
        if x.is_ascii_alphanumeric() {
            j += 1;
        } else if (x == b':' || x == b'-') && j + 1 < s.len() && s[j + 1].is_ascii_alphanumeric() {
            j += 2;
        } else {
            break;
        }
    }
    let name = String::from_utf8_lossy(&s[i..j]).to_ascii_lowercase();
    let e = match name.as_str() {
        "script" => Element::Script,
        "style" => Element::Style,
        "textarea" => Element::Textarea,
        "title" => Element::Title,
        _ => Element::None,
    };
    (j, e)
}

fn eat_attr_name(s: &[u8], i: usize) -> Result<usize, String> {
    for (j, &b) in s.iter().enumerate().skip(i) {
        match b {
            b' ' | b'\t' | b'\n' | b'\x0c' | b'\r' | b'=' | b'>' => return Ok(j),
            b'\'' | b'"' | b'<' => {
                return Err(format!(
                    "{:?} in attribute name: {:?}",
                    b as char,
                    String::from_utf8_lossy(&s[..s.len().min(32)])
                ));
            }
            _ => {}
        }
    }
    Ok(s.len())
}

/// Which kind of content an attribute holds (Go's `attrType`).
fn attr_kind(name: &str) -> Attr {
    let name = if let Some(rest) = name.strip_prefix("data-") {
        rest
    } else if let Some((prefix, short)) = name.split_once(':') {
        if prefix == "xmlns" {
            return Attr::Url;
        }
        short
    } else {
        name
    };
    const URL: &[&str] = &[
        "action",
        "archive",
        "background",
        "cite",
        "classid",
        "codebase",
        "data",
        "formaction",
        "href",
        "icon",
        "longdesc",
        "manifest",
        "poster",
        "profile",
        "src",
        "usemap",
        "xmlns",
    ];
    // Attributes Go classifies explicitly (plain, unsafe, HTML) even though their names would
    // match the patterns below.
    const EXPLICIT: &[&str] = &["srcdoc", "srclang"];
    if URL.contains(&name) {
        return Attr::Url;
    }
    match name {
        "style" => return Attr::Style,
        "srcset" => return Attr::Srcset,
        _ => {}
    }
    if EXPLICIT.contains(&name) || is_known_plain(name) {
        return Attr::None;
    }
    if name.starts_with("on") {
        return Attr::Script;
    }
    if name.contains("src") || name.contains("uri") || name.contains("url") {
        return Attr::Url;
    }
    Attr::None
}

/// Attribute names Go's table lists as plain or unsafe (so the `on*`/`*url*` patterns do not apply).
fn is_known_plain(name: &str) -> bool {
    const PLAIN: &[&str] = &[
        "accept",
        "accept-charset",
        "alt",
        "async",
        "autocomplete",
        "autofocus",
        "autoplay",
        "border",
        "checked",
        "challenge",
        "charset",
        "class",
        "cols",
        "colspan",
        "content",
        "contenteditable",
        "contextmenu",
        "controls",
        "coords",
        "crossorigin",
        "datetime",
        "default",
        "defer",
        "dir",
        "dirname",
        "disabled",
        "draggable",
        "dropzone",
        "enctype",
        "for",
        "form",
        "formenctype",
        "formmethod",
        "formnovalidate",
        "formtarget",
        "headers",
        "height",
        "hidden",
        "high",
        "hreflang",
        "http-equiv",
        "id",
        "ismap",
        "keytype",
        "kind",
        "label",
        "lang",
        "language",
        "list",
        "loop",
        "low",
        "max",
        "maxlength",
        "media",
        "mediagroup",
        "method",
        "min",
        "multiple",
        "name",
        "novalidate",
        "open",
        "optimum",
        "pattern",
        "placeholder",
        "preload",
        "pubdate",
        "radiogroup",
        "readonly",
        "rel",
        "required",
        "reversed",
        "rows",
        "rowspan",
        "sandbox",
        "spellcheck",
        "scope",
        "scoped",
        "seamless",
        "selected",
        "shape",
        "size",
        "sizes",
        "span",
        "start",
        "step",
        "tabindex",
        "target",
        "title",
        "type",
        "value",
        "width",
        "wrap",
    ];
    PLAIN.contains(&name)
}

fn element_content(e: Element) -> State {
    match e {
        Element::None => State::Text,
        Element::Script => State::Js,
        Element::Style => State::Css,
        Element::Textarea | Element::Title => State::Rcdata,
    }
}

fn error_ctx(msg: String, err: &mut Option<String>) -> Context {
    if err.is_none() {
        *err = Some(msg);
    }
    Context {
        state: State::Error,
        ..Context::default()
    }
}

fn t_text(c: Context, s: &[u8]) -> (Context, usize) {
    let mut k = 0;
    loop {
        let Some(off) = s[k..].iter().position(|&b| b == b'<') else {
            return (c, s.len());
        };
        let mut i = k + off;
        if i + 1 == s.len() {
            return (c, s.len());
        }
        if s[i..].starts_with(b"<!--") {
            return (
                Context {
                    state: State::HtmlCmt,
                    ..Context::default()
                },
                i + 4,
            );
        }
        i += 1;
        let mut end = false;
        if s[i] == b'/' {
            if i + 1 == s.len() {
                return (c, s.len());
            }
            end = true;
            i += 1;
        }
        let (j, e) = eat_tag_name(s, i);
        if j != i {
            return (
                Context {
                    state: State::Tag,
                    element: if end { Element::None } else { e },
                    ..Context::default()
                },
                j,
            );
        }
        k = j;
    }
}

fn t_tag(c: Context, s: &[u8], err: &mut Option<String>) -> (Context, usize) {
    let i = eat_ws(s, 0);
    if i == s.len() {
        return (c, s.len());
    }
    if s[i] == b'>' {
        return (
            Context {
                state: element_content(c.element),
                element: c.element,
                ..Context::default()
            },
            i + 1,
        );
    }
    let j = match eat_attr_name(s, i) {
        Ok(j) => j,
        Err(e) => return (error_ctx(e, err), s.len()),
    };
    if i == j {
        return (
            error_ctx(
                format!(
                    "expected space, attr name, or end of tag, but got {:?}",
                    String::from_utf8_lossy(&s[i..])
                ),
                err,
            ),
            s.len(),
        );
    }
    let name = String::from_utf8_lossy(&s[i..j]).to_ascii_lowercase();
    let attr = if c.element == Element::Script && name == "type" {
        Attr::ScriptType
    } else {
        attr_kind(&name)
    };
    let state = if j == s.len() {
        State::AttrName
    } else {
        State::AfterName
    };
    (
        Context {
            state,
            element: c.element,
            attr,
            ..Context::default()
        },
        j,
    )
}

fn t_url(mut c: Context, s: &[u8]) -> (Context, usize) {
    if s.iter().any(|b| *b == b'#' || *b == b'?') {
        c.url_part = UrlPart::QueryOrFrag;
    } else if eat_ws(s, 0) != s.len() && c.url_part == UrlPart::None {
        c.url_part = UrlPart::PreQuery;
    }
    (c, s.len())
}

fn t_js(mut c: Context, s: &[u8]) -> (Context, usize) {
    let Some(i) = find_any(s, b"\"'`/") else {
        return (c, s.len());
    };
    let mut i = i;
    match s[i] {
        b'"' => c.state = State::JsDqStr,
        b'\'' => c.state = State::JsSqStr,
        b'`' => c.state = State::JsBqStr,
        _ => {
            if i + 1 < s.len() && s[i + 1] == b'/' {
                c.state = State::JsLineCmt;
                i += 1;
            } else if i + 1 < s.len() && s[i + 1] == b'*' {
                c.state = State::JsBlockCmt;
                i += 1;
            }
            // Otherwise a division (regular expression literals are not tracked).
        }
    }
    (c, i + 1)
}

fn t_js_delimited(mut c: Context, s: &[u8], err: &mut Option<String>) -> (Context, usize) {
    let quote = match c.state {
        State::JsSqStr => b'\'',
        State::JsBqStr => b'`',
        _ => b'"',
    };
    let mut k = 0;
    while k < s.len() {
        let Some(off) = s[k..].iter().position(|&b| b == b'\\' || b == quote) else {
            break;
        };
        let i = k + off;
        if s[i] == b'\\' {
            if i + 1 == s.len() {
                return (
                    error_ctx("unfinished escape sequence in JS string".into(), err),
                    s.len(),
                );
            }
            k = i + 2;
            continue;
        }
        c.state = State::Js;
        return (c, i + 1);
    }
    (c, s.len())
}

fn t_block_cmt(mut c: Context, s: &[u8]) -> (Context, usize) {
    match find(s, b"*/") {
        None => (c, s.len()),
        Some(i) => {
            c.state = if c.state == State::JsBlockCmt {
                State::Js
            } else {
                State::Css
            };
            (c, i + 2)
        }
    }
}

fn t_line_cmt(mut c: Context, s: &[u8]) -> (Context, usize) {
    let (terms, end): (&[u8], State) = if c.state == State::JsLineCmt {
        (b"\n\r", State::Js)
    } else {
        (b"\n\x0c\r", State::Css)
    };
    match find_any(s, terms) {
        None => (c, s.len()),
        Some(i) => {
            c.state = end;
            (c, i)
        }
    }
}

fn t_css(mut c: Context, s: &[u8]) -> (Context, usize) {
    let mut k = 0;
    loop {
        let Some(off) = find_any(&s[k..], b"(\"'/") else {
            return (c, s.len());
        };
        let i = k + off;
        match s[i] {
            b'(' => {
                let before = String::from_utf8_lossy(&s[..i]);
                let before = before.trim_end_matches(['\t', '\n', '\x0c', '\r', ' ']);
                if before.to_ascii_lowercase().ends_with("url") {
                    let j = eat_ws(s, i + 1);
                    return if j < s.len() && s[j] == b'"' {
                        c.state = State::CssDqUrl;
                        (c, j + 1)
                    } else if j < s.len() && s[j] == b'\'' {
                        c.state = State::CssSqUrl;
                        (c, j + 1)
                    } else {
                        c.state = State::CssUrl;
                        (c, j)
                    };
                }
            }
            b'/' if i + 1 < s.len() && (s[i + 1] == b'/' || s[i + 1] == b'*') => {
                c.state = if s[i + 1] == b'/' {
                    State::CssLineCmt
                } else {
                    State::CssBlockCmt
                };
                return (c, i + 2);
            }
            b'"' => {
                c.state = State::CssDqStr;
                return (c, i + 1);
            }
            b'\'' => {
                c.state = State::CssSqStr;
                return (c, i + 1);
            }
            _ => {}
        }
        k = i + 1;
    }
}

fn t_css_str(mut c: Context, s: &[u8], err: &mut Option<String>) -> (Context, usize) {
    let ends: &[u8] = match c.state {
        State::CssDqStr | State::CssDqUrl => b"\\\"",
        State::CssSqStr | State::CssSqUrl => b"\\'",
        _ => b"\\\t\n\x0c\r )",
    };
    let mut k = 0;
    loop {
        let Some(off) = find_any(&s[k..], ends) else {
            let (c2, n) = t_url(c, &s[k..]);
            return (c2, k + n);
        };
        let i = k + off;
        if s[i] == b'\\' {
            if i + 1 == s.len() {
                return (
                    error_ctx("unfinished escape sequence in CSS string".into(), err),
                    s.len(),
                );
            }
            c = t_url(c, &s[k..i + 2]).0;
            k = i + 2;
            continue;
        }
        c.state = State::Css;
        return (c, i + 1);
    }
}

fn t_special_tag_end(c: Context, s: &[u8]) -> (Context, usize) {
    let tag: &[u8] = match c.element {
        Element::Script => b"script",
        Element::Style => b"style",
        Element::Textarea => b"textarea",
        Element::Title => b"title",
        Element::None => return (c, s.len()),
    };
    let mut pos = 0;
    while pos < s.len() {
        let Some(off) = find(&s[pos..], b"</") else { break };
        let i = pos + off;
        let after = &s[i + 2..];
        if after.len() > tag.len()
            && after[..tag.len()].eq_ignore_ascii_case(tag)
            && b"> \t\n\x0c/".contains(&after[tag.len()])
        {
            return (Context::default(), i);
        }
        pos = i + 2;
    }
    (c, s.len())
}

fn transition(c: Context, s: &[u8], err: &mut Option<String>) -> (Context, usize) {
    match c.state {
        State::Text => t_text(c, s),
        State::Tag => t_tag(c, s, err),
        State::AttrName => match eat_attr_name(s, 0) {
            Err(e) => (error_ctx(e, err), s.len()),
            Ok(i) => {
                let mut c = c;
                if i != s.len() {
                    c.state = State::AfterName;
                }
                (c, i)
            }
        },
        State::AfterName => {
            let i = eat_ws(s, 0);
            let mut c = c;
            if i == s.len() {
                (c, s.len())
            } else if s[i] != b'=' {
                c.state = State::Tag;
                (c, i)
            } else {
                c.state = State::BeforeValue;
                (c, i + 1)
            }
        }
        State::BeforeValue => {
            let mut i = eat_ws(s, 0);
            if i == s.len() {
                return (c, s.len());
            }
            let mut c = c;
            c.delim = match s[i] {
                b'\'' => {
                    i += 1;
                    Delim::SingleQuote
                }
                b'"' => {
                    i += 1;
                    Delim::DoubleQuote
                }
                _ => Delim::SpaceOrTagEnd,
            };
            c.state = attr_start(c.attr);
            (c, i)
        }
        State::HtmlCmt => match find(s, b"-->") {
            Some(i) => (Context::default(), i + 3),
            None => (c, s.len()),
        },
        State::Rcdata => t_special_tag_end(c, s),
        State::Attr => (c, s.len()),
        State::Url | State::Srcset => t_url(c, s),
        State::Js => t_js(c, s),
        State::JsDqStr | State::JsSqStr | State::JsBqStr => t_js_delimited(c, s, err),
        State::JsBlockCmt | State::CssBlockCmt => t_block_cmt(c, s),
        State::JsLineCmt | State::CssLineCmt => t_line_cmt(c, s),
        State::Css => t_css(c, s),
        State::CssDqStr | State::CssSqStr | State::CssDqUrl | State::CssSqUrl | State::CssUrl => {
            t_css_str(c, s, err)
        }
        State::Error => (c, s.len()),
    }
}

fn attr_start(a: Attr) -> State {
    match a {
        Attr::None | Attr::ScriptType => State::Attr,
        Attr::Script => State::Js,
        Attr::Style => State::Css,
        Attr::Url => State::Url,
        Attr::Srcset => State::Srcset,
    }
}

/// The context after (a prefix of) `s`, and how much of `s` that consumed (Go's `contextAfterText`).
fn context_after_text(c: Context, s: &[u8], err: &mut Option<String>) -> (Context, usize) {
    if c.delim == Delim::None {
        let (c1, i) = t_special_tag_end(c, s);
        if i == 0 {
            return (c1, 0);
        }
        return transition(c, &s[..i], err);
    }
    let ends: &[u8] = match c.delim {
        Delim::DoubleQuote => b"\"",
        Delim::SingleQuote => b"'",
        _ => b"\t\n\x0c\r >",
    };
    let i = find_any(s, ends).unwrap_or(s.len());
    if c.delim == Delim::SpaceOrTagEnd
        && let Some(j) = find_any(&s[..i], b"\"'<=`")
    {
        return (
            error_ctx(
                format!(
                    "{:?} in unquoted attr: {:?}",
                    s[j] as char,
                    String::from_utf8_lossy(&s[..i])
                ),
                err,
            ),
            s.len(),
        );
    }
    if i == s.len() {
        // Still inside the attribute value: run the value's own rules over the decoded text.
        let decoded = unescape_entities(&String::from_utf8_lossy(s));
        let mut u = decoded.as_bytes();
        let mut c = c;
        while !u.is_empty() {
            let (c1, n) = transition(c, u, err);
            if n == 0 && c1 == c {
                break;
            }
            c = c1;
            u = &u[n..];
        }
        return (c, s.len());
    }
    let mut element = c.element;
    if c.state == State::Attr && c.element == Element::Script && c.attr == Attr::ScriptType {
        let t = String::from_utf8_lossy(&s[..i]).to_ascii_lowercase();
        if !is_js_type(t.trim()) {
            element = Element::None;
        }
    }
    let consumed = if c.delim == Delim::SpaceOrTagEnd { i } else { i + 1 };
    (
        Context {
            state: State::Tag,
            element,
            ..Context::default()
        },
        consumed,
    )
}

fn is_js_type(mime: &str) -> bool {
    let m = mime.split(';').next().unwrap_or("").trim();
    matches!(
        m,
        "" | "application/ecmascript"
            | "application/javascript"
            | "application/json"
            | "application/ld+json"
            | "application/x-ecmascript"
            | "application/x-javascript"
            | "module"
            | "text/ecmascript"
            | "text/javascript"
            | "text/javascript1.0"
            | "text/javascript1.1"
            | "text/javascript1.2"
            | "text/javascript1.3"
            | "text/javascript1.4"
            | "text/javascript1.5"
            | "text/jscript"
            | "text/livescript"
            | "text/x-ecmascript"
            | "text/x-javascript"
    )
}

/// Decodes the few character references that matter for context decisions inside attributes.
fn unescape_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let named = [
            ("&amp;", '&'),
            ("&quot;", '"'),
            ("&lt;", '<'),
            ("&gt;", '>'),
            ("&apos;", '\''),
            ("&num;", '#'),
            ("&quest;", '?'),
        ];
        if let Some((ent, ch)) = named.iter().find(|(e, _)| tail.starts_with(e)) {
            out.push(*ch);
            rest = &tail[ent.len()..];
            continue;
        }
        if let Some(num) = tail.strip_prefix("&#")
            && let Some(end) = num.find(';')
        {
            let digits = &num[..end];
            let code = if let Some(h) = digits.strip_prefix(['x', 'X']) {
                u32::from_str_radix(h, 16).ok()
            } else {
                digits.parse().ok()
            };
            if let Some(ch) = code.and_then(char::from_u32) {
                out.push(ch);
                rest = &num[end + 1..];
                continue;
            }
        }
        out.push('&');
        rest = &tail[1..];
    }
    out.push_str(rest);
    out
}

impl HtmlEscaper {
    /// Writes template text: comments are elided and stray `<` in text become `&lt;`.
    pub fn write_text(&mut self, out: &mut String, text: &str) {
        let s = text.as_bytes();
        let mut written = 0usize;
        let mut i = 0usize;
        let mut c = self.ctx;
        while i != s.len() {
            let (c1, nread) = context_after_text(c, &s[i..], &mut self.error);
            let i1 = i + nread;
            if c.state == State::Text || c.state == State::Rcdata {
                let mut end = i1;
                if c1.state != c.state
                    && let Some(j) = s[i..end].iter().rposition(|&b| b == b'<')
                {
                    end = i + j;
                }
                for j in i..end {
                    if s[j] == b'<' && !starts_with_ci(&s[j..], b"<!DOCTYPE") {
                        out.push_str(&text[written..j]);
                        out.push_str("&lt;");
                        written = j + 1;
                    }
                }
            } else if c.state.is_comment() && c.delim == Delim::None {
                match c.state {
                    State::JsBlockCmt => {
                        let seg = &text[written.min(i1)..i1];
                        out.push(if seg.contains(['\n', '\r']) { '\n' } else { ' ' });
                    }
                    State::CssBlockCmt => out.push(' '),
                    _ => {}
                }
                written = i1;
            }
            if c.state != c1.state && c1.state.is_comment() && c1.delim == Delim::None {
                let mut cs = i1.saturating_sub(2);
                if c1.state == State::HtmlCmt {
                    cs = cs.saturating_sub(2);
                }
                if cs >= written {
                    out.push_str(&text[written..cs]);
                }
                written = i1;
            }
            if i == i1 && c == c1 {
                // No progress is possible (malformed input); copy the rest.
                break;
            }
            c = c1;
            i = i1;
        }
        if !(c.state.is_comment() && c.delim == Delim::None) && written < s.len() {
            out.push_str(&text[written..]);
        }
        self.ctx = c;
    }

    /// Writes an action's value escaped for the current context.
    pub fn write_value(&mut self, out: &mut String, v: &Value, predefined: Option<Predefined>) {
        let mut c = self.ctx;
        // Go's `nudge`: an action right after `=` starts an unquoted value; in a tag, a name.
        match c.state {
            State::BeforeValue => {
                c.state = attr_start(c.attr);
                c.delim = Delim::SpaceOrTagEnd;
            }
            State::Tag => c.state = State::AttrName,
            _ => {}
        }
        let mut chain: Vec<Esc> = Vec::with_capacity(3);
        match c.state {
            State::Error => return,
            State::Url
            | State::CssDqStr
            | State::CssSqStr
            | State::CssDqUrl
            | State::CssSqUrl
            | State::CssUrl => match c.url_part {
                UrlPart::None => {
                    chain.push(Esc::UrlFilter);
                    chain.push(if matches!(c.state, State::CssDqStr | State::CssSqStr) {
                        Esc::CssEscaper
                    } else {
                        Esc::UrlNormalizer
                    });
                }
                UrlPart::PreQuery => chain.push(if matches!(c.state, State::CssDqStr | State::CssSqStr) {
                    Esc::CssEscaper
                } else {
                    Esc::UrlNormalizer
                }),
                UrlPart::QueryOrFrag => chain.push(Esc::UrlEscaper),
            },
            State::Js => chain.push(Esc::JsVal),
            State::JsDqStr | State::JsSqStr | State::JsBqStr => chain.push(Esc::JsStr),
            State::Css => chain.push(Esc::CssValue),
            State::Text => chain.push(Esc::HtmlText),
            State::Rcdata => chain.push(Esc::Rcdata),
            State::Attr => {}
            State::AttrName | State::Tag => chain.push(Esc::HtmlName),
            State::Srcset => chain.push(Esc::Srcset),
            _ => chain.push(Esc::Comment),
        }
        match c.delim {
            Delim::None => {}
            Delim::SpaceOrTagEnd => chain.push(Esc::NoSpace),
            _ => chain.push(Esc::Attr),
        }
        // A pipeline ending in `html`/`urlquery`: the builtin takes the place of its equivalent
        // escapers; without an equivalent it runs first, as written.
        let mut run_builtin_first = None;
        if let Some(p) = predefined {
            let mut dup = false;
            for e in chain.iter_mut() {
                if e.equivalent(p) {
                    *e = match p {
                        Predefined::Html => Esc::BuiltinHtml,
                        Predefined::UrlQuery => Esc::BuiltinUrlQuery,
                    };
                    dup = true;
                }
            }
            if !dup {
                run_builtin_first = Some(p);
            }
        }
        let (mut s, mut t) = stringify(v);
        if let Some(p) = run_builtin_first {
            s = match p {
                Predefined::Html => builtin_html(&s),
                Predefined::UrlQuery => crate::ruler::gotemplate::exec::query_escape(&s),
            };
            t = Content::Plain;
        }
        for e in chain {
            s = apply(e, &s, t);
            t = Content::Plain;
        }
        out.push_str(&s);
        // Go's escaper continues from the nudged context; the value itself never changes it.
        self.ctx = c;
    }
}

fn starts_with_ci(s: &[u8], p: &[u8]) -> bool {
    s.len() >= p.len() && s[..p.len()].eq_ignore_ascii_case(p)
}

/// A value as text plus its content type (Go's `stringify`; untyped nil prints nothing).
fn stringify(v: &Value) -> (String, Content) {
    match v {
        Value::Nil => (String::new(), Content::Plain),
        Value::Str(s) => (s.clone(), Content::Plain),
        Value::Html(s) => (s.clone(), Content::Html),
        Value::Opaque { type_name, text } if *type_name == super::funcs::URL_TYPE => {
            (text.clone(), Content::Url)
        }
        other => (super::funcs::print_text(other), Content::Plain),
    }
}

fn apply(e: Esc, s: &str, t: Content) -> String {
    match e {
        Esc::UrlFilter => {
            if t == Content::Url || is_safe_url(s) {
                s.to_string()
            } else {
                format!("#{FAILSAFE}")
            }
        }
        Esc::UrlNormalizer => process_url(s, true),
        Esc::UrlEscaper => process_url(s, t == Content::Url),
        Esc::CssEscaper => css_escape(s),
        Esc::JsVal => js_val(s),
        Esc::JsStr => js_str(s),
        Esc::CssValue => css_value_filter(s),
        Esc::HtmlText => {
            if t == Content::Html {
                s.to_string()
            } else {
                replace(s, Table::Html)
            }
        }
        Esc::Rcdata => {
            if t == Content::Html {
                replace(s, Table::HtmlNorm)
            } else {
                replace(s, Table::Html)
            }
        }
        Esc::Attr => {
            if t == Content::Html {
                replace(&strip_tags(s), Table::HtmlNorm)
            } else {
                replace(s, Table::Html)
            }
        }
        Esc::NoSpace => {
            if t == Content::Html {
                replace(&strip_tags(s), Table::NoSpaceNorm)
            } else {
                replace(s, Table::NoSpace)
            }
        }
        Esc::HtmlName => html_name_filter(s),
        Esc::Srcset => {
            if is_safe_url(s.trim()) {
                process_url(s, true).replace(',', "%2c")
            } else {
                format!("#{FAILSAFE}")
            }
        }
        Esc::Comment => String::new(),
        Esc::BuiltinHtml => builtin_html(s),
        Esc::BuiltinUrlQuery => crate::ruler::gotemplate::exec::query_escape(s),
    }
}

/// text/template's `html` builtin (`HTMLEscapeString`).
fn builtin_html(s: &str) -> String {
    crate::ruler::gotemplate::exec::html_escape(s)
}

#[derive(Clone, Copy, PartialEq)]
enum Table {
    Html,
    HtmlNorm,
    NoSpace,
    NoSpaceNorm,
}

fn replace(s: &str, t: Table) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let nospace = matches!(t, Table::NoSpace | Table::NoSpaceNorm);
    let norm = matches!(t, Table::HtmlNorm | Table::NoSpaceNorm);
    for ch in s.chars() {
        let r: Option<&str> = match ch {
            '\0' => Some(if nospace { "&#xfffd;" } else { "\u{fffd}" }),
            '"' => Some("&#34;"),
            '&' if !norm => Some("&amp;"),
            '\'' => Some("&#39;"),
            '+' => Some("&#43;"),
            '<' => Some("&lt;"),
            '>' => Some("&gt;"),
            '\t' if nospace => Some("&#9;"),
            '\n' if nospace => Some("&#10;"),
            '\x0b' if nospace => Some("&#11;"),
            '\x0c' if nospace => Some("&#12;"),
            '\r' if nospace => Some("&#13;"),
            ' ' if nospace => Some("&#32;"),
            '=' if nospace => Some("&#61;"),
            '`' if nospace => Some("&#96;"),
            _ => None,
        };
        match r {
            Some(r) => out.push_str(r),
            None if nospace
                && (('\u{fdd0}'..='\u{fdef}').contains(&ch) || ('\u{fff0}'..='\u{ffff}').contains(&ch)) =>
            {
                out.push_str(&format!("&#x{:x};", ch as u32));
            }
            None => out.push(ch),
        }
    }
    out
}

/// The text content of an HTML snippet (Go's `stripTags`, simplified to tags and comments).
fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut esc = HtmlEscaper::default();
    let s = html.as_bytes();
    let mut i = 0;
    while i < s.len() {
        let c = esc.ctx;
        let (c1, n) = if c.delim == Delim::None {
            let mut cc = c;
            if cc.element != Element::None && !cc.state.is_in_tag() {
                cc.state = State::Rcdata;
            }
            transition(cc, &s[i..], &mut esc.error)
        } else {
            context_after_text(c, &s[i..], &mut esc.error)
        };
        let i1 = i + n;
        if c.state == State::Text || c.state == State::Rcdata {
            let mut j = i1;
            if c1.state != c.state
                && let Some(k) = s[i..j].iter().rposition(|&b| b == b'<')
            {
                j = i + k;
            }
            out.push_str(&html[i..j]);
        }
        if i1 == i && c1 == c {
            break;
        }
        esc.ctx = c1;
        i = i1;
        if c1.state == State::Error {
            break;
        }
    }
    out
}

fn is_safe_url(s: &str) -> bool {
    if let Some((proto, _)) = s.split_once(':')
        && !proto.contains('/')
    {
        return proto.eq_ignore_ascii_case("http")
            || proto.eq_ignore_ascii_case("https")
            || proto.eq_ignore_ascii_case("mailto");
    }
    true
}

fn is_hex(b: u8) -> bool {
    b.is_ascii_hexdigit()
}

/// Go's `processURLOnto`: percent-encodes what may not appear in a URL (normalising keeps
/// reserved characters and valid escapes).
fn process_url(s: &str, norm: bool) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len() + 16);
    for (i, &c) in b.iter().enumerate() {
        let keep = match c {
            b'!' | b'#' | b'$' | b'&' | b'*' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'?' | b'@'
            | b'[' | b']' => norm,
            b'-' | b'.' | b'_' | b'~' => true,
            b'%' => norm && i + 2 < b.len() && is_hex(b[i + 1]) && is_hex(b[i + 2]),
            c => c.is_ascii_alphanumeric(),
        };
        // Everything kept is ASCII; every other byte (UTF-8 sequences included) is encoded.
        if keep {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02x}"));
        }
    }
    out
}

fn css_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let chars: Vec<char> = s.chars().collect();
    for (i, &ch) in chars.iter().enumerate() {
        let r = match ch {
            '\0' => "\\0",
            '\t' => "\\9",
            '\n' => "\\a",
            '\x0c' => "\\c",
            '\r' => "\\d",
            '"' => "\\22",
            '&' => "\\26",
            '\'' => "\\27",
            '(' => "\\28",
            ')' => "\\29",
            '+' => "\\2b",
            '/' => "\\2f",
            ':' => "\\3a",
            ';' => "\\3b",
            '<' => "\\3c",
            '>' => "\\3e",
            '\\' => "\\\\",
            '{' => "\\7b",
            '}' => "\\7d",
            _ => {
                out.push(ch);
                continue;
            }
        };
        out.push_str(r);
        let next = chars.get(i + 1);
        if r != "\\\\"
            && next.is_none_or(|n| n.is_ascii_hexdigit() || matches!(n, ' ' | '\t' | '\n' | '\x0c' | '\r'))
        {
            out.push(' ');
        }
    }
    out
}

fn css_value_filter(s: &str) -> String {
    let b = s.as_bytes();
    let mut id = String::new();
    for (i, &c) in b.iter().enumerate() {
        match c {
            0 | b'"' | b'\'' | b'(' | b')' | b'/' | b';' | b'@' | b'[' | b'\\' | b']' | b'`' | b'{'
            | b'}' => {
                return FAILSAFE.into();
            }
            b'-' if i != 0 && b[i - 1] == b'-' => return FAILSAFE.into(),
            c if c.is_ascii_alphanumeric() || c == b'-' || c == b'_' => {
                id.push(c.to_ascii_lowercase() as char)
            }
            _ => {}
        }
    }
    if id.contains("expression") || id.contains("mozbinding") {
        return FAILSAFE.into();
    }
    s.to_string()
}

fn html_name_filter(s: &str) -> String {
    if s.is_empty() {
        return FAILSAFE.into();
    }
    let l = s.to_ascii_lowercase();
    if attr_kind(&l) != Attr::None || !l.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        return FAILSAFE.into();
    }
    l
}

fn js_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '\0' => out.push_str("\\u0000"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\x0b' => out.push_str("\\u000b"),
            '\x0c' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            '"' => out.push_str("\\u0022"),
            '`' => out.push_str("\\u0060"),
            '&' => out.push_str("\\u0026"),
            '\'' => out.push_str("\\u0027"),
            '+' => out.push_str("\\u002b"),
            '/' => out.push_str("\\/"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '\\' => out.push_str("\\\\"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// A string value as a JS expression (Go's `jsValEscaper` for strings: JSON, padded if it
/// could run into an identifier).
fn js_val(s: &str) -> String {
    let json = super::funcs::go_json_string(s);
    let json = json.replace('\u{2028}', "\\u2028").replace('\u{2029}', "\\u2029");
    let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$');
    if ident(json.chars().next()) || ident(json.chars().last()) {
        format!(" {json} ")
    } else {
        json
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(parts: &[(&str, Option<&str>)]) -> String {
        let mut e = HtmlEscaper::default();
        let mut out = String::new();
        for (text, value) in parts {
            e.write_text(&mut out, text);
            if let Some(v) = value {
                e.write_value(&mut out, &Value::str(*v), None);
            }
        }
        out
    }

    #[test]
    fn text_and_attributes() {
        assert_eq!(
            render(&[("<p>", Some("a<b> & \"c\" + 'd'")), ("</p>", None)]),
            "<p>a&lt;b&gt; &amp; &#34;c&#34; &#43; &#39;d&#39;</p>"
        );
        assert_eq!(
            render(&[("<a title=\"", Some("x\"y")), ("\">", None)]),
            "<a title=\"x&#34;y\">"
        );
        assert_eq!(
            render(&[("<a title=", Some("a b")), (">", None)]),
            "<a title=a&#32;b>"
        );
    }

    #[test]
    fn urls_are_filtered_normalised_and_escaped() {
        assert_eq!(
            render(&[("<a href=\"", Some("javascript:alert(1)")), ("\">", None)]),
            "<a href=\"#ZgotmplZ\">"
        );
        assert_eq!(
            render(&[
                ("<a href=\"", Some("http://h/a b")),
                ("/#/alerts?receiver=", Some("x y&z")),
                ("\">", None)
            ]),
            "<a href=\"http://h/a%20b/#/alerts?receiver=x%20y%26z\">"
        );
    }

    #[test]
    fn comments_dropped_and_stray_lt_escaped() {
        assert_eq!(render(&[("<!-- hi -->a < b", None)]), "a &lt; b");
        assert_eq!(render(&[("<!DOCTYPE html><b>", None)]), "<!DOCTYPE html><b>");
        assert_eq!(
            render(&[("<title>", Some("<x>")), ("</title>", None)]),
            "<title>&lt;x&gt;</title>"
        );
    }

    #[test]
    fn predefined_escapers_merge() {
        let mut e = HtmlEscaper::default();
        let mut out = String::new();
        e.write_text(&mut out, "<a href=\"http://x/?q=");
        e.write_value(&mut out, &Value::str("a b+c"), Some(Predefined::UrlQuery));
        assert_eq!(out, "<a href=\"http://x/?q=a&#43;b%2Bc");
        let mut e = HtmlEscaper::default();
        let mut out = String::new();
        e.write_text(&mut out, "<p>");
        e.write_value(&mut out, &Value::str("a+<b>"), Some(Predefined::Html));
        assert_eq!(out, "<p>a+&lt;b&gt;");
    }

    #[test]
    fn typed_html_passes_in_text_only() {
        let mut e = HtmlEscaper::default();
        let mut out = String::new();
        e.write_text(&mut out, "<p>");
        e.write_value(&mut out, &Value::Html("<b>x</b>".into()), None);
        e.write_text(&mut out, "<a title=\"");
        e.write_value(&mut out, &Value::Html("<b>x</b>".into()), None);
        assert_eq!(out, "<p><b>x</b><a title=\"x");
    }
}
