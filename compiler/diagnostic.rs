//! The one diagnostic type every stage reports through, the source map it
//! points into, and its renderings (human, short, JSON).
//!
//! Stages never print: they return `Vec<Diagnostic>` and the CLI renders them
//! with codespan-reporting, which can label two files in one diagnostic (a
//! merge conflict between a stdlib module and a host needs that).

use std::borrow::Cow;
use std::fmt;
use std::io;
use std::ops::{Deref, Range};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::sync::OnceLock;

use codespan_reporting::diagnostic as cs;
use codespan_reporting::files::{self, SimpleFiles};
use codespan_reporting::term;
use serde::Serialize;

use crate::codes::{Code, Registered};

/// Index of a loaded source file in the [`SourceMap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct FileId(pub u32);

/// A byte range in one source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Span {
    pub file: FileId,
    pub start: u32,
    pub end: u32,
}

impl Span {
    /// A span covering `range` in `file`.
    pub fn new(file: FileId, range: Range<usize>) -> Span {
        Span {
            file,
            start: range.start as u32,
            end: range.end as u32,
        }
    }

    /// The smallest span covering both `self` and `other` (same file).
    pub fn to(self, other: Span) -> Span {
        Span {
            file: self.file,
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }

    /// The byte range, for slicing the source text.
    pub fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// A loaded source file: user files by their path as given, stdlib modules
/// under the pseudo-path `<std>/NAME.dsl`.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub name: String,
    pub text: String,
    /// Built on the first location asked of this file: rendering 50,000
    /// diagnostics once rescanned the text up to each one (quadratic).
    lines: OnceLock<LineIndex>,
}

/// Where each line of a file starts, and whether the file is ASCII (then a
/// column is a byte difference, not a count of characters along the line).
#[derive(Debug, Clone)]
struct LineIndex {
    starts: Vec<u32>,
    ascii: bool,
}

impl SourceFile {
    fn lines(&self) -> &LineIndex {
        self.lines.get_or_init(|| LineIndex {
            starts: files::line_starts(&self.text).map(|s| s as u32).collect(),
            ascii: self.text.is_ascii(),
        })
    }

    /// The zero-based line holding byte `offset`, and its byte range
    /// (without the newline).
    fn line_at(&self, offset: usize) -> (usize, Range<usize>) {
        let starts = &self.lines().starts;
        let line = starts.partition_point(|&s| s as usize <= offset).max(1) - 1;
        let start = starts[line] as usize;
        let end = starts
            .get(line + 1)
            .map_or(self.text.len(), |&next| next as usize - 1);
        (line, start..end)
    }
}

/// Every source file of one run, so diagnostics can be rendered with context.
#[derive(Debug, Default, Clone)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    /// Adds a file and returns its id.
    pub fn add(&mut self, name: impl Into<String>, text: impl Into<String>) -> FileId {
        self.files.push(SourceFile {
            name: name.into(),
            text: text.into(),
            lines: OnceLock::new(),
        });
        FileId(self.files.len() as u32 - 1)
    }

    /// Shows files whose name starts with `from` as starting with `to`
    /// instead (a git revision's checkout as `HEAD:`).
    pub fn rename_prefix(&mut self, from: &str, to: &str) {
        for file in &mut self.files {
            if let Some(rest) = file.name.strip_prefix(from) {
                file.name = format!("{to}{rest}");
            }
        }
    }

    /// The file behind `id`.
    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    /// The text a span covers.
    pub fn snippet(&self, span: Span) -> &str {
        let text = &self.get(span.file).text;
        text.get(span.range()).unwrap_or("")
    }

    /// One-based line and column of a byte offset.
    pub fn line_col(&self, file: FileId, offset: u32) -> (usize, usize) {
        let source = self.get(file);
        let text = &source.text;
        let offset = floor_char_boundary(text, (offset as usize).min(text.len()));
        let (line, range) = source.line_at(offset);
        let col = if source.lines().ascii {
            offset - range.start
        } else {
            text[range.start..offset].chars().count()
        };
        (line + 1, col + 1)
    }

    /// `file:line:col` of the start of `span`, as outputs name a place.
    pub fn location(&self, span: Span) -> String {
        let (line, col) = self.line_col(span.file, span.start);
        format!("{}:{line}:{col}", self.get(span.file).name)
    }

    /// All files, in load order.
    pub fn files(&self) -> &[SourceFile] {
        &self.files
    }
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while offset > 0 && !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Note,
}

/// The text of a message or label: a fixed text borrowed, a text several
/// diagnostics share (a lint's finding in many classes), or a made one
/// owned (exactly its length). 100,000 located errors of one kind share
/// their fixed texts instead of holding 100,000 copies. Compares, hashes
/// and prints as its text.
#[derive(Clone)]
pub enum Message {
    Borrowed(&'static str),
    Shared(Arc<str>),
    Owned(Box<str>),
}

impl Message {
    /// The text, owned.
    pub fn into_owned(self) -> String {
        match self {
            Message::Owned(text) => text.into_string(),
            other => other.to_string(),
        }
    }
}

impl Deref for Message {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            Message::Borrowed(text) => text,
            Message::Shared(text) => text,
            Message::Owned(text) => text,
        }
    }
}

impl AsRef<str> for Message {
    fn as_ref(&self) -> &str {
        self
    }
}

impl std::borrow::Borrow<str> for Message {
    fn borrow(&self) -> &str {
        self
    }
}

impl From<&'static str> for Message {
    fn from(text: &'static str) -> Message {
        Message::Borrowed(text)
    }
}

impl From<String> for Message {
    fn from(text: String) -> Message {
        Message::Owned(text.into_boxed_str())
    }
}

impl From<Box<str>> for Message {
    fn from(text: Box<str>) -> Message {
        Message::Owned(text)
    }
}

impl From<Arc<str>> for Message {
    fn from(text: Arc<str>) -> Message {
        Message::Shared(text)
    }
}

impl From<Cow<'static, str>> for Message {
    fn from(text: Cow<'static, str>) -> Message {
        match text {
            Cow::Borrowed(text) => Message::Borrowed(text),
            Cow::Owned(text) => text.into(),
        }
    }
}

impl From<&Message> for String {
    fn from(text: &Message) -> String {
        text.to_string()
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl Serialize for Message {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self)
    }
}

impl PartialEq for Message {
    fn eq(&self, other: &Message) -> bool {
        **self == **other
    }
}

impl Eq for Message {}

impl PartialOrd for Message {
    fn partial_cmp(&self, other: &Message) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Message {
    fn cmp(&self, other: &Message) -> std::cmp::Ordering {
        (**self).cmp(&**other)
    }
}

impl std::hash::Hash for Message {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (**self).hash(state)
    }
}

/// `message == "text"` and the like, as for the `Cow` it replaced.
macro_rules! message_eq {
    ($($other:ty),*) => {$(
        impl PartialEq<$other> for Message {
            fn eq(&self, other: &$other) -> bool {
                **self == *AsRef::<str>::as_ref(other)
            }
        }
        impl PartialEq<Message> for $other {
            fn eq(&self, other: &Message) -> bool {
                *AsRef::<str>::as_ref(self) == **other
            }
        }
    )*};
}
message_eq!(str, String);

impl PartialEq<&str> for Message {
    fn eq(&self, other: &&str) -> bool {
        **self == **other
    }
}

impl PartialEq<Message> for &str {
    fn eq(&self, other: &Message) -> bool {
        **self == **other
    }
}

/// A note's or hint's text: a [`Message`], or a pattern filled with names
/// when shown. 45,000 findings that differ only in the hosts they name
/// keep the names, not 45,000 sentences around them.
#[derive(Clone)]
pub enum Text {
    Message(Message),
    Filled(Filled),
}

/// A fixed pattern whose `{0}` … `{9}` stand for names, and the names.
#[derive(Clone)]
pub struct Filled {
    pattern: &'static str,
    /// The names, each ended by [`ARG_END`]: one allocation for them all,
    /// shared by the patterns of one diagnostic ([`Names`]).
    args: Arc<str>,
}

/// Ends each name of a [`Filled`]; names holding it are filled in at once.
const ARG_END: char = '\u{1f}';

impl Text {
    /// `pattern` filled with `args` (see [`Names::fill`]).
    pub fn filled(pattern: &'static str, args: &[&str]) -> Text {
        Names::new(args).fill(pattern)
    }

    /// The text, filled in if it is a pattern.
    pub fn as_str(&self) -> Cow<'_, str> {
        match self {
            Text::Message(text) => Cow::Borrowed(text),
            Text::Filled(filled) => Cow::Owned(filled.to_string()),
        }
    }

    /// True for the empty text.
    pub fn is_empty(&self) -> bool {
        self.as_str().is_empty()
    }

    /// True when `self` and `other` share their made part: the one text
    /// ([`Message::Shared`]) or the names they are filled with.
    #[cfg(test)]
    pub(crate) fn is_shared_with(&self, other: &Text) -> bool {
        match (self, other) {
            (Text::Filled(a), Text::Filled(b)) => Arc::ptr_eq(&a.args, &b.args),
            (Text::Message(Message::Shared(a)), Text::Message(Message::Shared(b))) => {
                Arc::ptr_eq(a, b)
            }
            _ => false,
        }
    }
}

/// The names one or more patterns of a diagnostic are filled with, held
/// once for them all.
pub struct Names {
    /// Each name ended by [`ARG_END`]; `None` when a name holds it.
    args: Option<Arc<str>>,
    /// The names, kept only when a name holds [`ARG_END`].
    held: Vec<String>,
}

impl Names {
    /// `args`, for `{0}`, `{1}`, … of the patterns filled with them.
    pub fn new(args: &[&str]) -> Names {
        if args.iter().any(|a| a.contains(ARG_END)) {
            let held = args.iter().map(|a| a.to_string()).collect();
            return Names { args: None, held };
        }
        let mut joined = String::with_capacity(args.iter().map(|a| a.len() + 1).sum());
        for arg in args {
            joined.push_str(arg);
            joined.push(ARG_END);
        }
        Names {
            args: Some(joined.into()),
            held: Vec::new(),
        }
    }

    /// `pattern` with `{i}` standing for the `i`th name, filled when shown
    /// (a pattern holds no other `{digit}`). Filled at once, as a
    /// [`Message`], when a quote would be shortened (so it reads as a made
    /// text would) or a name holds [`ARG_END`].
    pub fn fill(&self, pattern: &'static str) -> Text {
        let Some(args) = &self.args else {
            let held: Vec<&str> = self.held.iter().map(String::as_str).collect();
            return Text::Message(fill(pattern, |i| held.get(i).copied()).into());
        };
        let filled = Filled {
            pattern,
            args: args.clone(),
        };
        let text = filled.to_string();
        if quotes_too_long(&text) {
            return Text::Message(text.into());
        }
        Text::Filled(filled)
    }
}

/// `pattern` with each `{i}` replaced by `arg(i)` (empty if none).
fn fill<'a>(pattern: &str, arg: impl Fn(usize) -> Option<&'a str>) -> String {
    let mut out = String::new();
    let _ = write_filled(&mut out, pattern, arg);
    out
}

/// Writes `pattern` with each `{i}` replaced by `arg(i)` (empty if none).
fn write_filled<'a>(
    out: &mut impl fmt::Write,
    pattern: &str,
    arg: impl Fn(usize) -> Option<&'a str>,
) -> fmt::Result {
    let mut rest = pattern;
    while let Some(at) = rest.find('{') {
        match rest.as_bytes().get(at + 1..at + 3) {
            Some([digit @ b'0'..=b'9', b'}']) => {
                out.write_str(&rest[..at])?;
                out.write_str(arg((digit - b'0') as usize).unwrap_or(""))?;
                rest = &rest[at + 3..];
            }
            _ => {
                out.write_str(&rest[..=at])?;
                rest = &rest[at + 1..];
            }
        }
    }
    out.write_str(rest)
}

/// `pattern` filled with `names` (each ended by [`ARG_END`]).
fn fill_from(pattern: &str, names: &str) -> String {
    fill(pattern, |i| names.split(ARG_END).nth(i))
}

impl fmt::Display for Filled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_filled(f, self.pattern, |i| self.args.split(ARG_END).nth(i))
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.as_str(), f)
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Text {}

impl<T: Into<Message>> From<T> for Text {
    fn from(text: T) -> Text {
        Text::Message(text.into())
    }
}

/// A span with a message, shown under the source line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub span: Span,
    pub message: Message,
}

impl Label {
    /// A label on `span` saying `message`.
    pub fn new(span: Span, message: impl Into<Message>) -> Label {
        Label {
            span,
            message: shorten_quotes(message.into()),
        }
    }
}

/// What a diagnostic may carry besides its message and primary label.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Extra {
    Label(Label),
    Note(Text),
    Hint(Text),
}

/// One finding: what is wrong, where, and how to fix it.
///
/// Messages are lowercase, without a final period, with names in backticks;
/// the fix goes in a hint.
///
/// A large input may hold one per line until the end of its stage, so a
/// diagnostic is small: fixed texts are borrowed ([`Message`]), and the
/// secondary labels, notes and hints share one slice of exactly their
/// number (none: no allocation), or one list for every diagnostic that
/// says them ([`Extras`]). The size is pinned by a test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Stable code such as `E0101`, from the register (`codes.rs`).
    pub code: Code,
    pub message: Message,
    pub primary: Label,
    /// Secondary labels, notes and hints, each kind in the order added.
    extras: Extras,
}

/// The secondary labels, notes and hints of a diagnostic.
///
/// A list of fixed texts and patterns whose names are all one [`Names`]
/// is shared by every diagnostic that says it, with the names kept apart
/// (40,000 warnings W0703 keep their names, not 40,000 lists of three
/// texts); any other list is the diagnostic's own.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Extras {
    Own(Box<[Extra]>),
    Fixed {
        /// What the patterns of `list` are filled with.
        names: Option<Arc<str>>,
        /// Notes and hints, each borrowed or a pattern whose own names
        /// are none (see [`fixed_list`]).
        list: &'static Vec<Extra>,
    },
}

/// What makes a list of extras fixed: each one's kind, whether it is a
/// pattern, and its text or pattern.
type FixedKey = Vec<(bool, bool, &'static str)>;

thread_local! {
    /// The fixed lists made on this thread, kept for the run: a handful of
    /// texts and patterns, said by any number of diagnostics.
    static FIXED: std::cell::RefCell<std::collections::HashMap<FixedKey, &'static Vec<Extra>>> =
        Default::default();
}

impl Extras {
    /// The extras as a list of the diagnostic's own.
    fn into_vec(self) -> Vec<Extra> {
        match self {
            Extras::Own(list) => list.into_vec(),
            Extras::Fixed { names, list } => {
                list.iter().map(|e| e.with_names(names.as_ref())).collect()
            }
        }
    }

    /// `list`, shared when it is fixed (see [`Extras`]).
    fn from_vec(list: Vec<Extra>) -> Extras {
        match fixed_key(&list) {
            Some((key, names)) => Extras::Fixed {
                names,
                list: fixed_list(key, &list),
            },
            None => Extras::Own(list.into_boxed_slice()),
        }
    }

    /// The list, and the names of its patterns if it is shared.
    fn parts(&self) -> (&[Extra], Option<&Arc<str>>) {
        match self {
            Extras::Own(list) => (list, None),
            Extras::Fixed { names, list } => (list, names.as_ref()),
        }
    }
}

/// The key of `list` and its patterns' names when every extra is a note
/// or hint, borrowed or a pattern, and the patterns share their names.
fn fixed_key(list: &[Extra]) -> Option<(FixedKey, Option<Arc<str>>)> {
    let mut key = FixedKey::new();
    let mut names: Option<&Arc<str>> = None;
    for extra in list {
        let (is_note, text) = match extra {
            Extra::Note(text) => (true, text),
            Extra::Hint(text) => (false, text),
            Extra::Label(_) => return None,
        };
        match text {
            Text::Message(Message::Borrowed(text)) => key.push((is_note, false, text)),
            Text::Filled(filled) => {
                if names.is_some_and(|n| !Arc::ptr_eq(n, &filled.args)) {
                    return None;
                }
                names = Some(&filled.args);
                key.push((is_note, true, filled.pattern));
            }
            Text::Message(_) => return None,
        }
    }
    Some((key, names.cloned()))
}

/// The shared list for `key` (`list` with its patterns' names left out),
/// made on first use.
fn fixed_list(key: FixedKey, list: &[Extra]) -> &'static Vec<Extra> {
    FIXED.with(|fixed| {
        *fixed.borrow_mut().entry(key).or_insert_with(|| {
            let none: Arc<str> = Arc::from("");
            let shared = list.iter().map(|e| e.with_names(Some(&none))).collect();
            Box::leak(Box::new(shared))
        })
    })
}

impl Extra {
    /// The extra with its pattern, if any, filled with `names`.
    fn with_names(&self, names: Option<&Arc<str>>) -> Extra {
        let text = |text: &Text| match (text, names) {
            (Text::Filled(filled), Some(names)) => Text::Filled(Filled {
                pattern: filled.pattern,
                args: names.clone(),
            }),
            _ => text.clone(),
        };
        match self {
            Extra::Label(label) => Extra::Label(label.clone()),
            Extra::Note(note) => Extra::Note(text(note)),
            Extra::Hint(hint) => Extra::Hint(text(hint)),
        }
    }
}

/// Longest text quoted whole in a message; a longer name or path is shown
/// by its start and end (so a 50 MB identifier is not echoed whole).
const MAX_QUOTED: usize = 80;

/// True when a backticked quote in `text` is longer than [`MAX_QUOTED`].
fn quotes_too_long(text: &str) -> bool {
    text.len() > MAX_QUOTED
        && text
            .split('`')
            .skip(1)
            .step_by(2)
            .any(|q| q.len() > MAX_QUOTED)
}

/// Shortens every backticked quote in `text` longer than [`MAX_QUOTED`]
/// bytes to its start, `…`, its end and its length.
pub fn shorten_quotes(text: Message) -> Message {
    if !quotes_too_long(&text) {
        return text;
    }
    let parts: Vec<&str> = text.split('`').collect();
    let mut out = String::with_capacity(MAX_QUOTED * parts.len());
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push('`');
        }
        if i % 2 == 1 && part.len() > MAX_QUOTED {
            let head = &part[..floor_char_boundary(part, 40)];
            let tail_start = floor_char_boundary(part, part.len() - 20);
            out.push_str(&format!(
                "{head}…{} ({} bytes)",
                &part[tail_start..],
                part.len()
            ));
        } else {
            out.push_str(part);
        }
    }
    out.into()
}

/// A note's or hint's text with its long quotes shortened (a pattern is
/// filled at once when one would be: see [`Text::filled`]).
fn shortened(text: Text) -> Text {
    match text {
        Text::Message(text) => Text::Message(shorten_quotes(text)),
        filled => filled,
    }
}

impl Diagnostic {
    /// An error with its primary label; `code` is an error code of the register.
    pub fn error(code: impl Registered, message: impl Into<Message>, primary: Label) -> Diagnostic {
        Diagnostic::new(Severity::Error, code.code(), message.into(), primary)
    }

    /// A warning with its primary label; `code` is a warning code of the register.
    pub fn warning(
        code: impl Registered,
        message: impl Into<Message>,
        primary: Label,
    ) -> Diagnostic {
        Diagnostic::new(Severity::Warning, code.code(), message.into(), primary)
    }

    fn new(severity: Severity, code: Code, message: Message, primary: Label) -> Diagnostic {
        debug_assert_eq!(
            code.entry().severity,
            severity,
            "{code} is registered as a {}",
            code.entry().severity
        );
        Diagnostic {
            severity,
            code,
            message: shorten_quotes(message),
            primary,
            extras: Extras::Own(Box::default()),
        }
    }

    /// The extras, leaving none.
    fn take_extras(&mut self) -> Vec<Extra> {
        std::mem::replace(&mut self.extras, Extras::Own(Box::default())).into_vec()
    }

    /// Appends `extra`, the slice growing by exactly one.
    fn with_extra(mut self, extra: Extra) -> Diagnostic {
        let mut extras = self.take_extras();
        extras.reserve_exact(1);
        extras.push(extra);
        self.extras = Extras::from_vec(extras);
        self
    }

    /// Adds a secondary label.
    pub fn with_label(self, span: Span, message: impl Into<Message>) -> Diagnostic {
        self.with_extra(Extra::Label(Label::new(span, message)))
    }

    /// Adds a note (context, not a fix).
    pub fn with_note(self, note: impl Into<Text>) -> Diagnostic {
        self.with_extra(Extra::Note(shortened(note.into())))
    }

    /// Adds a hint (how to fix it).
    pub fn with_hint(self, hint: impl Into<Text>) -> Diagnostic {
        self.with_extra(Extra::Hint(shortened(hint.into())))
    }

    /// The same diagnostic with its hints replaced by `hint`.
    pub fn with_only_hint(mut self, hint: impl Into<Text>) -> Diagnostic {
        let mut extras = self.take_extras();
        extras.retain(|e| !matches!(e, Extra::Hint(_)));
        self.extras = Extras::from_vec(extras);
        self.with_hint(hint)
    }

    /// Keeps the secondary labels `keep` says yes to.
    pub fn retain_labels(&mut self, mut keep: impl FnMut(&Label) -> bool) {
        // A shared list has no labels.
        let Extras::Own(extras) = &mut self.extras else {
            return;
        };
        let mut extras = std::mem::take(extras).into_vec();
        extras.retain(|e| match e {
            Extra::Label(l) => keep(l),
            _ => true,
        });
        self.extras = Extras::Own(extras.into_boxed_slice());
    }

    /// The secondary labels, in the order added.
    pub fn secondary(&self) -> Vec<&Label> {
        self.extras
            .parts()
            .0
            .iter()
            .filter_map(|e| match e {
                Extra::Label(l) => Some(l),
                _ => None,
            })
            .collect()
    }

    /// The notes, in the order added.
    pub fn notes(&self) -> Vec<Cow<'_, str>> {
        self.texts(|e| match e {
            Extra::Note(n) => Some(n),
            _ => None,
        })
    }

    /// The hints, in the order added.
    pub fn hints(&self) -> Vec<Cow<'_, str>> {
        self.texts(|e| match e {
            Extra::Hint(h) => Some(h),
            _ => None,
        })
    }

    /// The texts of the extras `pick` picks, in the order added.
    fn texts<'d>(&'d self, pick: impl Fn(&'d Extra) -> Option<&'d Text>) -> Vec<Cow<'d, str>> {
        let (list, names) = self.extras.parts();
        list.iter()
            .filter_map(pick)
            .map(|text| match (text, names) {
                (Text::Filled(filled), Some(names)) => Cow::Owned(fill_from(filled.pattern, names)),
                _ => text.as_str(),
            })
            .collect()
    }

    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// A byte count as a person says it: `64 MiB`, `1 KiB`, `300 bytes`.
pub fn bytes_in_words(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

/// Pairs of characters `did_you_mean` may compare in one run (under a
/// second). 200,000 unknown names against 200,000 known ones would take
/// minutes: past the budget an error comes without a suggestion.
/// Suggestions are made while evaluating, one after another, so which
/// errors get one is deterministic.
static SUGGESTION_BUDGET: AtomicU64 = AtomicU64::new(200_000_000);

/// Longest name (bytes) a suggestion is looked for: no name is a typo of
/// a name this long, and comparing a 2 MB one with every option took seconds.
const MAX_SUGGESTED_NAME: usize = 256;

/// Takes `cost` from [`SUGGESTION_BUDGET`]; false (taking nothing) if it
/// has less left.
fn take_suggestion_budget(cost: u64) -> bool {
    SUGGESTION_BUDGET
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
            left.checked_sub(cost)
        })
        .is_ok()
}

/// "did you mean `x`?" for the known name closest to `name`, if any is close.
pub fn did_you_mean<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<String> {
    if name.len() > MAX_SUGGESTED_NAME {
        return None;
    }
    let known: Vec<&str> = known.into_iter().collect();
    let cost = known
        .iter()
        .map(|k| (name.len() as u64 + 1) * (k.len() as u64 + 1))
        .sum();
    if !take_suggestion_budget(cost) {
        return None;
    }
    // Fewest edits first (a typo is one or two edits); Jaro-Winkler breaks
    // ties and admits longer names that share a prefix.
    let mut best: Option<(usize, f64, &str)> = None;
    for candidate in known {
        let edits = strsim::levenshtein(name, candidate);
        let similarity = strsim::jaro_winkler(name, candidate);
        if edits > 2 && similarity <= 0.8 {
            continue;
        }
        let better = best.is_none_or(|(e, s, _)| edits < e || (edits == e && similarity > s));
        if better {
            best = Some((edits, similarity, candidate));
        }
    }
    best.map(|(_, _, c)| format!("did you mean `{c}`?"))
}

/// Sorts diagnostics by file, position, then severity, message and code, so
/// output is stable and repeats of one finding are neighbours.
pub fn sort(diagnostics: &mut [Diagnostic]) {
    crate::order::sort_stable_in_place(diagnostics, |a, b| {
        (a.primary.span, a.severity, &a.message, a.code).cmp(&(
            b.primary.span,
            b.severity,
            &b.message,
            b.code,
        ))
    });
}

/// Sorts diagnostics as [`sort`] does and keeps one of each finding that
/// several classes or templates repeat (same code, message and place).
/// Repeats are neighbours once sorted: no set of copied messages (83,000
/// warnings held a second copy of each text, issue 13).
pub fn sort_and_dedup(diagnostics: &mut Vec<Diagnostic>) {
    sort(diagnostics);
    diagnostics.dedup_by(|a, b| {
        a.code == b.code && a.primary.span == b.primary.span && a.message == b.message
    });
}

/// How diagnostics are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MessageFormat {
    /// Source snippets with carets, labels, notes and hints.
    #[default]
    Human,
    /// One line per diagnostic: `file:line:col: severity[code]: message`.
    Short,
    /// One JSON object per line, for tools.
    Json,
}

/// Renders diagnostics in `format`; `color` only affects `Human`.
pub fn render(
    sources: &SourceMap,
    diagnostics: &[Diagnostic],
    format: MessageFormat,
    color: bool,
) -> String {
    let shown: Vec<&Diagnostic> = diagnostics.iter().collect();
    let mut out = Vec::new();
    // Writing into a vector cannot fail.
    let _ = write(&mut out, sources, &shown, format, color);
    String::from_utf8_lossy(&out).into_owned()
}

/// Writes diagnostics in `format` to `out` one after another, so the text
/// of them all is never held at once (100,000 errors are 15 MB of it).
pub fn write(
    out: &mut impl io::Write,
    sources: &SourceMap,
    diagnostics: &[&Diagnostic],
    format: MessageFormat,
    color: bool,
) -> io::Result<()> {
    match format {
        MessageFormat::Human => write_human(out, sources, diagnostics, color),
        MessageFormat::Short => diagnostics
            .iter()
            .try_for_each(|d| writeln!(out, "{}", render_short(sources, d))),
        MessageFormat::Json => diagnostics
            .iter()
            .try_for_each(|d| writeln!(out, "{}", render_json(sources, d))),
    }
}

/// Longest source line shown under a diagnostic; a diagnostic on a longer
/// line is shown without the line (`file:line:col`, its labels, notes and
/// hints), so a 50 MB line is never echoed.
const MAX_SHOWN_LINE: usize = 1000;

/// Secondary labels a diagnostic shows in the human and short formats; the
/// rest are counted in a note (`--message-format json` keeps every one). A
/// rule repeated 50,000 times once printed 5.7 MB for one error.
const MAX_SHOWN_LABELS: usize = 12;

/// The secondary labels shown, and a note counting the others.
fn shown_labels(d: &Diagnostic) -> (Vec<&Label>, Option<String>) {
    let mut shown = d.secondary();
    let hidden = shown.len().saturating_sub(MAX_SHOWN_LABELS);
    shown.truncate(MAX_SHOWN_LABELS);
    let note = (hidden > 0).then(|| {
        format!(
            "and {hidden} more place{} like these (`--message-format json` lists every one)",
            if hidden == 1 { "" } else { "s" }
        )
    });
    (shown, note)
}

fn write_human(
    out: &mut impl io::Write,
    sources: &SourceMap,
    diagnostics: &[&Diagnostic],
    color: bool,
) -> io::Result<()> {
    // Only the files diagnostics point into, borrowed: codespan indexes the
    // lines of each file it is given.
    let mut files = SimpleFiles::new();
    let mut ids = std::collections::HashMap::new();
    for d in diagnostics {
        for label in std::iter::once(&d.primary).chain(d.secondary()) {
            let file = label.span.file;
            if (file.0 as usize) < sources.files().len() && !ids.contains_key(&file) {
                let source = sources.get(file);
                ids.insert(file, files.add(source.name.as_str(), source.text.as_str()));
            }
        }
    }
    let config = term::Config::default();
    for &diagnostic in diagnostics {
        if on_a_long_line(sources, diagnostic) {
            out.write_all(render_without_source(sources, diagnostic).as_bytes())?;
            continue;
        }
        let shown = to_codespan(diagnostic, &ids);
        let rendered = if color {
            let mut writer = term::termcolor::Buffer::ansi();
            term::emit_to_write_style(&mut writer, &config, &files, &shown)
                .map(|()| String::from_utf8_lossy(writer.as_slice()).into_owned())
        } else {
            let mut text = String::new();
            term::emit_to_string(&mut text, &config, &files, &shown).map(|()| text)
        };
        let text = match rendered {
            Ok(text) => text,
            Err(files::Error::FileMissing) | Err(_) => render_short(sources, diagnostic),
        };
        out.write_all(text.as_bytes())?;
    }
    Ok(())
}

/// True when a label of `d` sits on a line longer than [`MAX_SHOWN_LINE`].
fn on_a_long_line(sources: &SourceMap, d: &Diagnostic) -> bool {
    std::iter::once(&d.primary)
        .chain(d.secondary())
        .any(|label| {
            let Some(file) = sources.files().get(label.span.file.0 as usize) else {
                return false;
            };
            let len = file.text.len();
            let (_, first) = file.line_at((label.span.start as usize).min(len));
            let (_, last) = file.line_at((label.span.end as usize).min(len));
            last.end - first.start > MAX_SHOWN_LINE
        })
}

/// A diagnostic as its location, message, labels, notes and hints.
fn render_without_source(sources: &SourceMap, d: &Diagnostic) -> String {
    let mut out = render_short(sources, d);
    out.push('\n');
    // The first line (`render_short`) counts the labels not shown.
    let (shown, _) = shown_labels(d);
    for label in std::iter::once(&d.primary).chain(shown) {
        let (line, col) = sources.line_col(label.span.file, label.span.start);
        let name = &sources.get(label.span.file).name;
        out.push_str(&format!(
            "  = at {name}:{line}:{col} (line not shown: longer than {MAX_SHOWN_LINE} bytes): {}\n",
            label.message
        ));
    }
    for note in d.notes() {
        out.push_str(&format!("  = note: {note}\n"));
    }
    for hint in d.hints() {
        out.push_str(&format!("  = help: {hint}\n"));
    }
    out.push('\n');
    out
}

fn to_codespan(
    d: &Diagnostic,
    ids: &std::collections::HashMap<FileId, usize>,
) -> cs::Diagnostic<usize> {
    let id = |span: Span| ids.get(&span.file).copied().unwrap_or(usize::MAX);
    let severity = match d.severity {
        Severity::Error => cs::Severity::Error,
        Severity::Warning => cs::Severity::Warning,
        Severity::Note => cs::Severity::Note,
    };
    let mut labels = vec![
        cs::Label::primary(id(d.primary.span), d.primary.span.range())
            .with_message(&d.primary.message),
    ];
    let (shown, more) = shown_labels(d);
    labels.extend(
        shown
            .iter()
            .map(|l| cs::Label::secondary(id(l.span), l.span.range()).with_message(&l.message)),
    );
    let notes = d
        .notes()
        .into_iter()
        .chain(more.map(Cow::Owned))
        .map(|n| format!("note: {n}"))
        .chain(d.hints().into_iter().map(|h| format!("help: {h}")))
        .collect();
    cs::Diagnostic::new(severity)
        .with_code(d.code.as_str())
        .with_message(&d.message)
        .with_labels(labels)
        .with_notes(notes)
}

fn severity_word(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "note",
    }
}

/// `file:line:col: error[CODE]: message`, and each other place the
/// diagnostic names (the other definition of a conflict) on the same line.
fn render_short(sources: &SourceMap, d: &Diagnostic) -> String {
    let place = |span: Span| sources.location(span);
    let mut text = format!(
        "{}: {}[{}]: {}",
        place(d.primary.span),
        severity_word(d.severity),
        d.code,
        d.message
    );
    let (shown, more) = shown_labels(d);
    for label in shown {
        text.push_str(&format!(" (also {}: {})", place(label.span), label.message));
    }
    if let Some(more) = more {
        text.push_str(&format!(" ({more})"));
    }
    text
}

fn render_json(sources: &SourceMap, d: &Diagnostic) -> String {
    let label = |l: &Label| {
        let (line, column) = sources.line_col(l.span.file, l.span.start);
        let (end_line, end_column) = sources.line_col(l.span.file, l.span.end);
        serde_json::json!({
            "file": sources.get(l.span.file).name,
            "line": line, "column": column,
            "end_line": end_line, "end_column": end_column,
            "message": l.message,
        })
    };
    serde_json::json!({
        "severity": severity_word(d.severity),
        "code": d.code,
        "message": d.message,
        "primary": label(&d.primary),
        "secondary": d.secondary().into_iter().map(label).collect::<Vec<_>>(),
        "notes": d.notes(),
        "hints": d.hints(),
    })
    .to_string()
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(severity_word(*self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes;

    #[test]
    fn repeats_of_a_finding_are_said_once_whatever_comes_between_them() {
        let (_, file) = one_file();
        let at = |start: usize| Span::new(file, start..start + 1);
        let w = |code, message: &'static str, start: usize| {
            Diagnostic::warning(code, message, Label::new(at(start), "here"))
        };
        // One place, one text, two codes, in turns: each code once.
        let mut found = vec![
            w(codes::W0300, "same", 5),
            w(codes::W0301, "same", 5),
            w(codes::W0300, "same", 5),
            w(codes::W0300, "other", 5),
            w(codes::W0300, "same", 1),
            w(codes::W0301, "same", 5),
        ];
        sort_and_dedup(&mut found);
        let left: Vec<(String, String, u32)> = found
            .iter()
            .map(|d| {
                (
                    d.code.to_string(),
                    d.message.to_string(),
                    d.primary.span.start,
                )
            })
            .collect();
        assert_eq!(
            left,
            [
                ("W0300".into(), "same".into(), 1),
                ("W0300".into(), "other".into(), 5),
                ("W0300".into(), "same".into(), 5),
                ("W0301".into(), "same".into(), 5),
            ]
        );
    }

    fn one_file() -> (SourceMap, FileId) {
        let mut sources = SourceMap::default();
        let id = sources.add("c.dsl", "cluster x {\n  hots a {}\n}\n");
        (sources, id)
    }

    #[test]
    fn line_col_is_one_based_and_counts_chars() {
        let (sources, id) = one_file();
        assert_eq!(sources.line_col(id, 0), (1, 1));
        assert_eq!(sources.line_col(id, 14), (2, 3));
    }

    #[test]
    fn line_col_counts_characters_ends_and_offsets_past_the_end() {
        let mut sources = SourceMap::default();
        let id = sources.add("u.dsl", "é = 1;\nab\n");
        // `é` is two bytes and one column: `=` at offset 3 is column 3.
        assert_eq!(sources.line_col(id, 3), (1, 3));
        // Inside a character: its first byte's column.
        assert_eq!(sources.line_col(id, 1), (1, 1));
        assert_eq!(sources.line_col(id, 7), (1, 7), "the newline ends line 1");
        assert_eq!(sources.line_col(id, 9), (2, 2));
        assert_eq!(sources.line_col(id, 11), (3, 1), "after the last newline");
        assert_eq!(sources.line_col(id, 500), (3, 1), "clamped to the end");
        let span = Span::new(id, 9..10);
        assert_eq!(sources.location(span), "u.dsl:2:2");
    }

    #[test]
    fn many_diagnostics_on_one_long_line_are_located_without_the_line() {
        let mut sources = SourceMap::default();
        let line = "a,".repeat(MAX_SHOWN_LINE);
        let id = sources.add("long.dsl", format!("x\n{line}\ny\n"));
        let at = |start: usize| {
            Diagnostic::error(
                codes::E0001,
                "m",
                Label::new(Span::new(id, start..start + 1), "here"),
            )
        };
        let diagnostics: Vec<Diagnostic> = (0..50).map(|i| at(2 + 2 * i)).collect();
        let out = render(&sources, &diagnostics, MessageFormat::Human, false);
        assert_eq!(out.matches("line not shown").count(), 50, "{out}");
        assert!(out.contains("long.dsl:2:99 (line not shown"), "{out}");
        let short_line = render(&sources, &[at(0)], MessageFormat::Human, false);
        assert!(!short_line.contains("line not shown"), "{short_line}");
    }

    #[test]
    fn short_format_names_file_line_col_and_code() {
        let (sources, id) = one_file();
        let d = Diagnostic::error(
            codes::E0001,
            "unknown keyword `hots`",
            Label::new(Span::new(id, 14..18), "here"),
        );
        assert_eq!(
            render(&sources, &[d], MessageFormat::Short, false),
            "c.dsl:2:3: error[E0001]: unknown keyword `hots`\n"
        );
    }

    #[test]
    fn human_format_has_caret_and_hint() {
        let (sources, id) = one_file();
        let d = Diagnostic::error(
            codes::E0001,
            "unknown keyword `hots`",
            Label::new(Span::new(id, 14..18), "not a keyword"),
        )
        .with_hint("did you mean `host`?");
        let text = render(&sources, &[d], MessageFormat::Human, false);
        assert!(text.contains("^^^^ not a keyword"), "{text}");
        assert!(text.contains("help: did you mean `host`?"), "{text}");
        assert!(text.contains("c.dsl:2:3"), "{text}");
    }

    #[test]
    fn a_diagnostic_shows_a_dozen_labels_and_counts_the_rest() {
        let (sources, id) = one_file();
        let d = (0..40).fold(
            Diagnostic::error(
                codes::E0001,
                "unknown keyword `hots`",
                Label::new(Span::new(id, 14..18), "here"),
            ),
            |d, _| d.with_label(Span::new(id, 0..4), "and there"),
        );
        let human = render(
            &sources,
            std::slice::from_ref(&d),
            MessageFormat::Human,
            false,
        );
        assert_eq!(
            human.matches("and there").count(),
            MAX_SHOWN_LABELS,
            "{human}"
        );
        assert!(
            human.contains("note: and 28 more places like these"),
            "{human}"
        );
        let short = render(
            &sources,
            std::slice::from_ref(&d),
            MessageFormat::Short,
            false,
        );
        assert_eq!(short.matches("(also ").count(), MAX_SHOWN_LABELS, "{short}");
        assert!(short.contains("(and 28 more places like these"), "{short}");
        let json = render(&sources, &[d], MessageFormat::Json, false);
        assert_eq!(
            json.matches("and there").count(),
            40,
            "json keeps every label"
        );
    }

    /// A large input may hold one diagnostic per line until its stage ends:
    /// 100,000 of them cost 10 MB, not 40.
    #[test]
    fn a_diagnostic_is_small_and_borrows_fixed_texts() {
        assert_eq!(std::mem::size_of::<Diagnostic>(), 104);
        let (_, id) = one_file();
        let d = Diagnostic::error(
            codes::E0001,
            "a fixed message",
            Label::new(Span::new(id, 0..1), "a fixed label"),
        )
        .with_hint("a fixed hint")
        .with_note(format!("a made note {}", 1));
        assert!(matches!(d.message, Message::Borrowed(_)));
        assert!(matches!(d.primary.message, Message::Borrowed(_)));
        assert!(
            matches!(&d.extras, Extras::Own(list) if list.len() == 2),
            "no spare room"
        );
        assert_eq!(d.hints(), ["a fixed hint"]);
        assert_eq!(d.notes(), ["a made note 1"]);
    }

    /// 45,000 errors that differ only in the hosts they name keep the
    /// names once per diagnostic, and read as the texts made at once would.
    #[test]
    fn filled_texts_read_as_made_ones_and_share_their_names() {
        assert_eq!(
            std::mem::size_of::<Extra>(),
            40,
            "a filled text is no larger"
        );
        let names = Names::new(&["p1", "p0", "{0}"]);
        let hint = names.fill("add `{0}` to `{1}`, keep `{ x; }`, {2} and {9}");
        let note = names.fill("{1}");
        assert!(hint.is_shared_with(&note));
        assert_eq!(hint.as_str(), "add `p1` to `p0`, keep `{ x; }`, {0} and ");
        assert_eq!(note.as_str(), "p0");
        let long = "h".repeat(MAX_QUOTED + 1);
        let pattern = "peer `{0}`";
        let shortened = Text::filled(pattern, &[&long]);
        let made = shorten_quotes(format!("peer `{long}`").into());
        assert!(matches!(shortened, Text::Message(_)));
        assert_eq!(shortened.as_str(), format!("peer `{long}`"));
        let (_, id) = one_file();
        let d = Diagnostic::error(codes::E0001, "m", Label::new(Span::new(id, 0..1), "p"))
            .with_hint(shortened);
        assert_eq!(d.hints(), [&*made]);
        let odd = Text::filled("`{0}`", &["a\u{1f}b"]);
        assert_eq!(odd.as_str(), "`a\u{1f}b`");
    }

    /// Diagnostics that say the same fixed texts and patterns share one
    /// list and keep only their names.
    #[test]
    fn fixed_extras_are_one_list_for_every_diagnostic() {
        let (_, id) = one_file();
        let warn = |host: &str| {
            Diagnostic::error(codes::E0001, "m", Label::new(Span::new(id, 0..1), "p"))
                .with_note("a fixed note")
                .with_hint(Text::filled("mark `host {0}`", &[host]))
                .with_hint("a fixed hint")
        };
        let (a, b) = (warn("a"), warn("b"));
        let list = |d: &Diagnostic| match &d.extras {
            Extras::Fixed { list, .. } => Some(*list as *const Vec<Extra>),
            Extras::Own(_) => None,
        };
        assert!(list(&a).is_some());
        assert_eq!(list(&a), list(&b));
        assert_eq!(a.hints(), ["mark `host a`", "a fixed hint"]);
        assert_eq!(b.hints(), ["mark `host b`", "a fixed hint"]);
        assert_eq!(b.notes(), ["a fixed note"]);
        let mut labelled = b.clone().with_label(Span::new(id, 1..2), "l");
        assert_eq!(list(&labelled), None, "a label is the diagnostic's own");
        assert_eq!(labelled.hints(), b.hints());
        labelled.retain_labels(|_| false);
        assert_eq!(labelled.hints(), b.hints());
        let replaced = a.with_only_hint("h");
        assert_eq!(replaced.hints(), ["h"]);
        assert_eq!(replaced.notes(), ["a fixed note"]);
        let other_names = b.with_hint(Text::filled("`{0}`", &["c"]));
        assert_eq!(list(&other_names), None, "two sets of names");
        assert_eq!(
            other_names.hints(),
            ["mark `host b`", "a fixed hint", "`c`"]
        );
    }

    #[test]
    fn labels_notes_and_hints_keep_their_order_and_retain_filters_labels() {
        let (_, id) = one_file();
        let mut d = Diagnostic::error(codes::E0001, "m", Label::new(Span::new(id, 0..1), "p"))
            .with_label(Span::new(id, 1..2), "first")
            .with_hint("h1")
            .with_note("n1")
            .with_label(Span::new(id, 2..3), "second")
            .with_hint("h2");
        assert_eq!(d.hints(), ["h1", "h2"]);
        assert_eq!(d.notes(), ["n1"]);
        let labels: Vec<&str> = d.secondary().iter().map(|l| l.message.as_ref()).collect();
        assert_eq!(labels, ["first", "second"]);
        d.retain_labels(|l| l.message != "first");
        assert_eq!(d.secondary().len(), 1);
        assert_eq!(d.hints(), ["h1", "h2"], "hints stay");
        let d = d.with_only_hint("h3");
        assert_eq!(d.hints(), ["h3"]);
        assert_eq!(d.notes(), ["n1"]);
    }

    #[test]
    fn did_you_mean_picks_the_closest_name() {
        assert_eq!(
            did_you_mean("nodes", ["node", "controller"]).as_deref(),
            Some("did you mean `node`?")
        );
        assert_eq!(did_you_mean("zzz", ["node"]), None);
        assert_eq!(
            did_you_mean("std.shh", ["std.rsh", "std.ssh"]).as_deref(),
            Some("did you mean `std.ssh`?")
        );
    }
}
