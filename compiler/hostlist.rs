//! The pdsh/Slurm hostlist notation: `compute[0001-19999]`,
//! `rack[1-2]-n[01-32]`, `head,login[1-2]`.
//!
//! [`fold`] writes a set of host names in the notation; [`expand`] reads the
//! notation back into names. Every output that names a set of hosts folds it
//! here, so a 20,000-host role reads as one short word and a reviewer sees
//! the same spelling everywhere.
//!
//! The notation: a hostlist is atoms separated by `,`; an atom is text with
//! bracketed sets of numbers, `[1-3,07,10-12]`. A range takes the width of
//! its first number, so `[08-10]` is `08, 09, 10` and `[8-10]` is `8, 9, 10`
//! (zero padding is kept, as pdsh and Slurm keep it). Several brackets in one
//! atom are their product, leftmost outermost: `r[1-2]n[1-2]` is `r1n1, r1n2,
//! r2n1, r2n2`.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;

/// Digit runs longer than this are text, not numbers (they would not fit a
/// `u64`).
const MAX_DIGITS: usize = 18;

/// Folds `names` into the hostlist notation, atoms sorted in natural order
/// (`n2` before `n10`) and joined by `,`. Duplicates count once.
pub fn fold<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> String {
    fold_atoms(names).join(",")
}

/// Like [`fold`], as separate atoms (`["backup", "compute[01-16]", "head"]`).
pub fn fold_atoms<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> Vec<String> {
    // A million names fold in one pass over borrowed text: the first fold
    // (of each name's last number) parses no name but the first of each
    // atom, so the cost is a scan, a hash and a push per name.
    let mut unique: Vec<S> = names.into_iter().collect();
    // A stable sort: names usually come sorted, or in a few sorted runs.
    unique.sort_by(|a, b| a.as_ref().cmp(b.as_ref()));
    unique.dedup_by(|a, b| a.as_ref() == b.as_ref());
    let mut atoms = fold_last_numbers(&unique);
    drop(unique);
    let deepest = atoms.iter().map(Atom::numbers).max().unwrap_or(0);
    for from_right in 1..deepest {
        atoms = fold_position(atoms, from_right);
    }
    atoms.sort_by_cached_key(Atom::sort_key);
    atoms.iter().map(Atom::to_string).collect()
}

/// `user@hosts`, with the hostlist in braces when it has several atoms
/// (`root@{head,compute[01-16]}`), as a selector over a union is written.
pub fn principals<S: AsRef<str>>(user: &str, hosts: impl IntoIterator<Item = S>) -> String {
    principals_of(user, &fold(hosts))
}

/// [`principals`] of a hostlist already folded.
pub fn principals_of(user: &str, hostlist: &str) -> String {
    let mut depth = 0i32;
    let several = hostlist.chars().any(|c| {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            _ => {}
        }
        c == ',' && depth == 0
    });
    if several {
        format!("{user}@{{{hostlist}}}")
    } else {
        format!("{user}@{hostlist}")
    }
}

/// A hostlist that cannot be read, and where (byte offsets into the text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub at: Range<usize>,
}

/// What is wrong with a hostlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// Nothing between two commas, or at either end.
    EmptyAtom,
    /// A `[` without its `]`.
    Unclosed,
    /// A `]` without a `[`.
    UnexpectedClose,
    /// A `[` inside brackets.
    Nested,
    /// `[]`, or nothing between two commas inside brackets.
    EmptyRange,
    /// Something other than digits, `-` and `,` inside brackets.
    NotANumber,
    /// A number too long to be one.
    TooLong,
    /// `[5-3]`.
    Reversed,
    /// More hosts than the caller's limit.
    TooMany { count: u64, limit: u64 },
    /// A range whose names would be longer than [`MAX_EXPANDED_NAME`].
    NameTooLong { length: usize },
}

/// The longest name a range may stand for: a DNS name's 253 bytes. A
/// range of a long name would otherwise make its members' names before any
/// of them is checked (100,000 names of 100 KB, from a 100 KB line).
pub const MAX_EXPANDED_NAME: usize = 253;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::EmptyAtom => f.write_str("empty host name in the list"),
            ErrorKind::Unclosed => f.write_str("this `[` has no matching `]`"),
            ErrorKind::UnexpectedClose => f.write_str("this `]` has no matching `[`"),
            ErrorKind::Nested => f.write_str("brackets do not nest"),
            ErrorKind::EmptyRange => f.write_str("empty range"),
            ErrorKind::NotANumber => f.write_str("a range holds numbers (`[1-4,07]`)"),
            ErrorKind::TooLong => write!(f, "a number of more than {MAX_DIGITS} digits"),
            ErrorKind::Reversed => f.write_str("the range ends before it starts"),
            ErrorKind::TooMany { count, limit } => {
                write!(f, "{count} hosts, more than the limit of {limit}")
            }
            ErrorKind::NameTooLong { length } => write!(
                f,
                "its names would be {length} bytes long, more than a host name's {MAX_EXPANDED_NAME}"
            ),
        }
    }
}

/// The names a hostlist stands for, in the order written; an error when it
/// is malformed or would name more than `limit` hosts (counted before
/// anything is expanded, so no input can exhaust memory).
pub fn expand(text: &str, limit: u64) -> Result<Vec<String>, Error> {
    let atoms = parse_bounded(text)?;
    let count = atoms
        .iter()
        .map(ParsedAtom::count)
        .fold(0u64, u64::saturating_add);
    if count > limit {
        return Err(Error {
            kind: ErrorKind::TooMany { count, limit },
            at: 0..text.len(),
        });
    }
    let mut out = Vec::with_capacity(count as usize);
    for atom in &atoms {
        atom.expand_into(&mut out);
    }
    Ok(out)
}

/// How many names a hostlist stands for, without expanding it.
pub fn count(text: &str) -> Result<u64, Error> {
    Ok(parse_bounded(text)?
        .iter()
        .map(ParsedAtom::count)
        .fold(0, u64::saturating_add))
}

/// A run of numbers `lo..=hi`, each written `width` digits wide at least.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NumRange {
    lo: u64,
    hi: u64,
    width: usize,
}

impl NumRange {
    fn len(&self) -> u64 {
        self.hi - self.lo + 1
    }

    fn show(&self, value: u64) -> String {
        format!("{value:0width$}", width = self.width)
    }
}

impl fmt::Display for NumRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lo == self.hi {
            f.write_str(&self.show(self.lo))
        } else {
            write!(f, "{}-{}", self.show(self.lo), self.show(self.hi))
        }
    }
}

/// A piece of text held inline up to 24 bytes.
type Text = compact_str::CompactString;

/// One piece of a name while folding.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(Text),
    /// A digit run as written.
    Num(Text),
    /// Folded digit runs.
    Set(Vec<NumRange>),
}

/// A name, or several folded into one, as text and numbers.
#[derive(Debug, Clone)]
struct Atom {
    parts: Vec<Part>,
}

impl Atom {
    fn parse(name: &str) -> Atom {
        // As many parts as runs of digits and of the rest: no spare room.
        let runs = 1 + name
            .as_bytes()
            .windows(2)
            .filter(|w| w[0].is_ascii_digit() != w[1].is_ascii_digit())
            .count();
        let mut parts = Vec::with_capacity(runs);
        let mut rest = name;
        while !rest.is_empty() {
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            if digits > 0 {
                let (run, tail) = rest.split_at(digits);
                parts.push(if digits <= MAX_DIGITS {
                    Part::Num(run.into())
                } else {
                    Part::Text(run.into())
                });
                rest = tail;
            } else {
                let text = rest
                    .find(|c: char| c.is_ascii_digit())
                    .unwrap_or(rest.len());
                let (run, tail) = rest.split_at(text);
                parts.push(Part::Text(run.into()));
                rest = tail;
            }
        }
        Atom { parts }
    }

    /// How many numeric parts (folded or not) the atom has.
    fn numbers(&self) -> usize {
        self.parts
            .iter()
            .filter(|p| !matches!(p, Part::Text(_)))
            .count()
    }

    /// The index in `parts` of the numeric part `from_right` places from the
    /// right, if there is one.
    fn numeric_index(&self, from_right: usize) -> Option<usize> {
        self.parts
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, p)| !matches!(p, Part::Text(_)))
            .nth(from_right)
            .map(|(i, _)| i)
    }

    /// Natural order: text compared as text, digit runs as numbers.
    fn sort_key(&self) -> Vec<(String, u64, usize)> {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => (t.to_string(), 0, 0),
                Part::Num(n) => (String::new(), n.parse().unwrap_or(0), n.len()),
                Part::Set(ranges) => (String::new(), ranges[0].lo, ranges[0].width),
            })
            .collect()
    }
}

impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            match part {
                Part::Text(t) | Part::Num(t) => f.write_str(t)?,
                Part::Set(ranges) => {
                    f.write_str("[")?;
                    for (i, r) in ranges.iter().enumerate() {
                        if i > 0 {
                            f.write_str(",")?;
                        }
                        write!(f, "{r}")?;
                    }
                    f.write_str("]")?;
                }
            }
        }
        Ok(())
    }
}

/// The byte range of the last run of digits in `name` that is a number (at
/// most [`MAX_DIGITS`] long): the numeric part [`Atom::numeric_index`]
/// finds at 0 places from the right.
fn last_number(name: &str) -> Option<Range<usize>> {
    let bytes = name.as_bytes();
    let mut end = bytes.len();
    loop {
        end = bytes[..end].iter().rposition(u8::is_ascii_digit)? + 1;
        let start = bytes[..end]
            .iter()
            .rposition(|b| !b.is_ascii_digit())
            .map_or(0, |i| i + 1);
        if end - start <= MAX_DIGITS {
            return Some(start..end);
        }
        end = start;
    }
}

/// [`fold_position`] at 0 places from the right over the sorted, distinct
/// `names`, without making an atom of each: names that differ only in
/// their last number are grouped by the text around it, and only the first
/// of each group is parsed.
fn fold_last_numbers<S: AsRef<str>>(names: &[S]) -> Vec<Atom> {
    let mut out: Vec<Atom> = Vec::new();
    // (text before the number, text after it) -> (atom in out, numbers)
    let mut groups: foldhash::HashMap<(&str, &str), (usize, Vec<&str>)> =
        foldhash::HashMap::default();
    for name in names {
        let name = name.as_ref();
        let Some(number) = last_number(name) else {
            out.push(Atom::parse(name));
            continue;
        };
        let key = (&name[..number.start], &name[number.end..]);
        let digits = &name[number];
        match groups.get_mut(&key) {
            Some((_, numbers)) => numbers.push(digits),
            None => {
                groups.insert(key, (out.len(), vec![digits]));
                out.push(Atom::parse(name));
            }
        }
    }
    for (at, numbers) in groups.into_values() {
        if numbers.len() > 1 {
            let index = out[at].numeric_index(0).unwrap_or(0);
            out[at].parts[index] = Part::Set(ranges(&numbers));
        }
    }
    out
}

/// Folds atoms that differ only in the numeric part `from_right` places from
/// the right into one atom with a bracketed set there.
fn fold_position(atoms: Vec<Atom>, from_right: usize) -> Vec<Atom> {
    let mut out: Vec<Atom> = Vec::with_capacity(atoms.len());
    // (the other parts rendered, the part's index) -> (atom in out, numbers)
    let mut groups: HashMap<(String, usize), (usize, Vec<Text>)> = HashMap::new();
    for atom in atoms {
        let Some(at) = atom.numeric_index(from_right) else {
            out.push(atom);
            continue;
        };
        let Part::Num(number) = &atom.parts[at] else {
            out.push(atom);
            continue;
        };
        let mut rest = atom.clone();
        rest.parts[at] = Part::Text("\0".into());
        let key = (rest.to_string(), at);
        match groups.get_mut(&key) {
            Some((_, numbers)) => numbers.push(number.clone()),
            None => {
                groups.insert(key, (out.len(), vec![number.clone()]));
                out.push(atom);
            }
        }
    }
    for (at, numbers) in groups.into_values() {
        if numbers.len() > 1 {
            let index = out[at].numeric_index(from_right).unwrap_or(0);
            out[at].parts[index] = Part::Set(ranges(&numbers));
        }
    }
    out
}

/// The fewest ranges that spell exactly `numbers` (digit strings), each
/// range as wide as its first number.
fn ranges<T: AsRef<str>>(numbers: &[T]) -> Vec<NumRange> {
    let mut sorted: Vec<(u64, usize)> = numbers
        .iter()
        .map(|n| (n.as_ref().parse().unwrap_or(0), n.as_ref().len()))
        .collect();
    sorted.sort_by_key(|&(value, width)| (value, width));
    let mut out: Vec<NumRange> = Vec::new();
    for (value, width) in sorted {
        if let Some(last) = out.last_mut() {
            // Digits that spell `value` are `last.show(value)` exactly
            // when they are as long (both are `value` zero-padded).
            if value == last.hi + 1 && width == last.width.max(decimal_digits(value)) {
                last.hi = value;
                continue;
            }
        }
        out.push(NumRange {
            lo: value,
            hi: value,
            width,
        });
    }
    out
}

/// The atoms of `text`, refused when a range among them stands for names
/// longer than [`MAX_EXPANDED_NAME`] (a name without brackets is one name,
/// as long as it is written, and left to the caller's checks).
fn parse_bounded(text: &str) -> Result<Vec<ParsedAtom>, Error> {
    let atoms = parse(text)?;
    let too_long = atoms
        .iter()
        .filter(|atom| atom.has_ranges())
        .map(ParsedAtom::longest)
        .find(|&length| length > MAX_EXPANDED_NAME);
    match too_long {
        Some(length) => Err(Error {
            kind: ErrorKind::NameTooLong { length },
            at: 0..text.len(),
        }),
        None => Ok(atoms),
    }
}

/// How many digits `value` has written in decimal.
fn decimal_digits(value: u64) -> usize {
    value.checked_ilog10().map_or(1, |log| log as usize + 1)
}

/// One atom of a hostlist being read: text and ranges, in order.
#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    Ranges(Vec<NumRange>),
}

#[derive(Debug, Clone)]
struct ParsedAtom {
    pieces: Vec<Piece>,
}

impl ParsedAtom {
    fn count(&self) -> u64 {
        self.pieces
            .iter()
            .map(|p| match p {
                Piece::Text(_) => 1,
                Piece::Ranges(rs) => rs.iter().map(NumRange::len).fold(0, u64::saturating_add),
            })
            .fold(1, u64::saturating_mul)
    }

    fn has_ranges(&self) -> bool {
        self.pieces.iter().any(|p| matches!(p, Piece::Ranges(_)))
    }

    /// The length of the longest name it stands for.
    fn longest(&self) -> usize {
        self.pieces
            .iter()
            .map(|p| match p {
                Piece::Text(text) => text.len(),
                Piece::Ranges(ranges) => ranges
                    .iter()
                    .map(|r| r.width.max(decimal_digits(r.hi)))
                    .max()
                    .unwrap_or(0),
            })
            .fold(0, usize::saturating_add)
    }

    fn expand_into(&self, out: &mut Vec<String>) {
        let mut names = vec![String::new()];
        for piece in &self.pieces {
            names = match piece {
                Piece::Text(t) => names.into_iter().map(|n| n + t).collect(),
                Piece::Ranges(ranges) => names
                    .iter()
                    .flat_map(|n| {
                        ranges.iter().flat_map(move |r| {
                            (r.lo..=r.hi).map(move |v| format!("{n}{}", r.show(v)))
                        })
                    })
                    .collect(),
            };
        }
        out.extend(names);
    }
}

fn parse(text: &str) -> Result<Vec<ParsedAtom>, Error> {
    let mut atoms = Vec::new();
    let mut pieces: Vec<Piece> = Vec::new();
    let mut atom_start = 0;
    let mut text_start = 0;
    let mut i = 0;
    let bytes = text.as_bytes();
    let flush_text = |pieces: &mut Vec<Piece>, from: usize, to: usize| {
        if to > from {
            pieces.push(Piece::Text(text[from..to].to_string()));
        }
    };
    while i < bytes.len() {
        match bytes[i] {
            b',' => {
                flush_text(&mut pieces, text_start, i);
                if pieces.is_empty() {
                    return Err(Error {
                        kind: ErrorKind::EmptyAtom,
                        at: atom_start..i + 1,
                    });
                }
                atoms.push(ParsedAtom {
                    pieces: std::mem::take(&mut pieces),
                });
                i += 1;
                atom_start = i;
                text_start = i;
            }
            b'[' => {
                flush_text(&mut pieces, text_start, i);
                let close = match text[i + 1..].find([']', '[']).map(|j| i + 1 + j) {
                    Some(j) if bytes[j] == b']' => j,
                    Some(j) => {
                        return Err(Error {
                            kind: ErrorKind::Nested,
                            at: j..j + 1,
                        })
                    }
                    None => {
                        return Err(Error {
                            kind: ErrorKind::Unclosed,
                            at: i..i + 1,
                        })
                    }
                };
                pieces.push(Piece::Ranges(parse_ranges(text, i + 1, close)?));
                i = close + 1;
                text_start = i;
            }
            b']' => {
                return Err(Error {
                    kind: ErrorKind::UnexpectedClose,
                    at: i..i + 1,
                })
            }
            _ => i += 1,
        }
    }
    flush_text(&mut pieces, text_start, bytes.len());
    if pieces.is_empty() {
        return Err(Error {
            kind: ErrorKind::EmptyAtom,
            at: atom_start..bytes.len(),
        });
    }
    atoms.push(ParsedAtom { pieces });
    Ok(atoms)
}

/// The ranges between `[` and `]` (`start..end` excludes both).
fn parse_ranges(text: &str, start: usize, end: usize) -> Result<Vec<NumRange>, Error> {
    let mut out = Vec::new();
    let mut at = start;
    for item in text[start..end].split(',') {
        let span = at..at + item.len();
        at += item.len() + 1;
        if item.is_empty() {
            return Err(Error {
                kind: ErrorKind::EmptyRange,
                at: span.start.saturating_sub(1)..span.end + 1,
            });
        }
        let (lo, hi) = item.split_once('-').unwrap_or((item, item));
        let number = |digits: &str| -> Result<u64, Error> {
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Error {
                    kind: ErrorKind::NotANumber,
                    at: span.clone(),
                });
            }
            if digits.len() > MAX_DIGITS {
                return Err(Error {
                    kind: ErrorKind::TooLong,
                    at: span.clone(),
                });
            }
            Ok(digits.parse().unwrap_or(0))
        };
        let (low, high) = (number(lo)?, number(hi)?);
        if high < low {
            return Err(Error {
                kind: ErrorKind::Reversed,
                at: span,
            });
        }
        out.push(NumRange {
            lo: low,
            hi: high,
            width: lo.len(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_of_names_longer_than_a_host_name_is_refused_before_expanding() {
        let long = "n".repeat(MAX_EXPANDED_NAME - 3);
        // 250 letters and up to three digits: 253 bytes, the most.
        assert_eq!(expand(&format!("{long}[1-100]"), 1000).unwrap().len(), 100);
        let too_long = format!("{long}[1-1000]");
        let refused = |result: Result<u64, Error>| match result {
            Err(Error {
                kind: ErrorKind::NameTooLong { length },
                ..
            }) => length,
            other => panic!("{other:?}"),
        };
        assert_eq!(refused(count(&too_long)), MAX_EXPANDED_NAME + 1);
        assert_eq!(
            refused(expand(&too_long, 1_000_000).map(|n| n.len() as u64)),
            MAX_EXPANDED_NAME + 1
        );
        // Zero padding counts: `[0001-0002]` writes four digits.
        assert!(count(&format!("{long}[0001-0002]")).is_err());
        // One long name is one name, left to the caller's checks.
        assert_eq!(expand(&"n".repeat(100_000), 1).unwrap().len(), 1);
    }

    fn names(prefix: &str, range: std::ops::RangeInclusive<u32>, width: usize) -> Vec<String> {
        range.map(|i| format!("{prefix}{i:0width$}")).collect()
    }

    #[test]
    fn folds_the_usual_shapes() {
        let cases: &[(&[&str], &str)] = &[
            (&[], ""),
            (&["head"], "head"),
            (&["n1", "n2", "n3"], "n[1-3]"),
            (&["n8", "n9", "n10"], "n[8-10]"),
            (&["n08", "n09", "n10"], "n[08-10]"),
            (&["n1", "n2", "n3", "n5", "n7", "n8"], "n[1-3,5,7-8]"),
            (&["n01", "n02", "n3"], "n[01-02,3]"),
            (&["n1", "n01"], "n[1,01]"),
            (&["a1b1", "a1b2", "a2b1", "a2b2"], "a[1-2]b[1-2]"),
            (&["a1b1", "a1b2", "a2b1"], "a1b[1-2],a2b1"),
            (&["n1.lan", "n2.lan", "n3.lab"], "n[1-2].lan,n3.lab"),
            (
                &["head", "backup", "compute01", "compute02"],
                "backup,compute[01-02],head",
            ),
            (&["x2", "x10", "x1"], "x[1-2,10]"),
            (&["n2", "n2"], "n2"),
        ];
        for (input, want) in cases {
            assert_eq!(fold(input.iter()), *want, "{input:?}");
        }
    }

    #[test]
    fn folds_padded_ranges_and_products() {
        assert_eq!(fold(names("compute", 1..=19999, 4)), "compute[0001-19999]");
        let racks: Vec<String> = (1..=2)
            .flat_map(|r| (1..=32).map(move |n| format!("rack{r}-n{n:02}")))
            .collect();
        assert_eq!(fold(&racks), "rack[1-2]-n[01-32]");
        // A product with a hole does not fold into one atom.
        let holed: Vec<&String> = racks.iter().filter(|n| *n != "rack2-n07").collect();
        assert_eq!(fold(holed), "rack1-n[01-32],rack2-n[01-06,08-32]");
    }

    #[test]
    fn principals_brace_a_union() {
        assert_eq!(principals("root", ["ws42"]), "root@ws42");
        assert_eq!(principals("root", ["n1", "n2", "n5"]), "root@n[1-2,5]");
        assert_eq!(
            principals("root", ["head", "compute01", "compute02"]),
            "root@{compute[01-02],head}"
        );
    }

    #[test]
    fn expands_what_it_folds() {
        let sets: Vec<Vec<String>> = vec![
            names("compute", 1..=120, 3),
            names("n", 7..=13, 1),
            vec!["a1b1".into(), "a1b2".into(), "a2b1".into(), "head".into()],
            vec!["n01".into(), "n1".into(), "n2".into(), "n02".into()],
            vec!["x99".into(), "x100".into(), "x099".into()],
            vec!["node".into(), "node0".into(), "node00".into()],
        ];
        for set in sets {
            let folded = fold(&set);
            let mut back = expand(&folded, 1_000).unwrap();
            let mut want = set.clone();
            back.sort();
            want.sort();
            want.dedup();
            assert_eq!(back, want, "{folded}");
        }
    }

    #[test]
    fn expands_in_written_order() {
        assert_eq!(
            expand("r[1-2]n[1-2],head", 100).unwrap(),
            ["r1n1", "r1n2", "r2n1", "r2n2", "head"]
        );
        assert_eq!(
            expand("c[08-10,1]", 100).unwrap(),
            ["c08", "c09", "c10", "c1"]
        );
        assert_eq!(count("compute[0001-19999],rack[1-2]-n[01-32]"), Ok(20063));
    }

    #[test]
    fn malformed_lists_say_what_and_where() {
        let cases: &[(&str, ErrorKind, Range<usize>)] = &[
            ("a,,b", ErrorKind::EmptyAtom, 2..3),
            ("a,", ErrorKind::EmptyAtom, 2..2),
            ("n[1-3", ErrorKind::Unclosed, 1..2),
            ("n1-3]", ErrorKind::UnexpectedClose, 4..5),
            ("n[1[2]]", ErrorKind::Nested, 3..4),
            ("n[]", ErrorKind::EmptyRange, 1..3),
            ("n[1,,2]", ErrorKind::EmptyRange, 3..5),
            ("n[a-3]", ErrorKind::NotANumber, 2..5),
            ("n[1-]", ErrorKind::NotANumber, 2..4),
            ("n[5-3]", ErrorKind::Reversed, 2..5),
            ("n[1234567890123456789]", ErrorKind::TooLong, 2..21),
        ];
        for (text, kind, at) in cases {
            let error = expand(text, 100).unwrap_err();
            assert_eq!((&error.kind, &error.at), (kind, at), "{text}: {error}");
        }
        let error = expand("n[1-100000000000]", 1_000_000).unwrap_err();
        assert_eq!(
            error.to_string(),
            "100000000000 hosts, more than the limit of 1000000"
        );
    }

    /// The first fold as [`fold_position`] does it, atom by atom.
    fn first_fold_by_atoms(names: &[String]) -> Vec<String> {
        let atoms = names.iter().map(|n| Atom::parse(n)).collect();
        fold_position(atoms, 0)
            .iter()
            .map(Atom::to_string)
            .collect()
    }

    #[test]
    fn the_first_fold_reads_names_as_atoms_do() {
        let mut names: Vec<String> = [
            "a1b2",
            "a1b3",
            "a2b2",
            "n1234567890123456789",
            "n1234567890123456789x7",
            "n1234567890123456789x8",
            "x12345678901234567890123456789",
            "head",
            "7",
            "8",
            "08",
            "0",
            "00",
        ]
        .map(String::from)
        .to_vec();
        names.sort();
        let fast: Vec<String> = fold_last_numbers(&names)
            .iter()
            .map(Atom::to_string)
            .collect();
        assert_eq!(fast, first_fold_by_atoms(&names));
        assert_eq!(
            fold(&names),
            "[0,00,7-8,08],a1b[2-3],a2b2,head,n1234567890123456789,n1234567890123456789x[7-8],x12345678901234567890123456789"
        );
    }

    proptest::proptest! {
        #[test]
        fn the_first_fold_matches_the_fold_of_atoms(
            set in proptest::collection::btree_set("[ab]{0,2}[0-9]{0,3}(-[a-b][0-9]{1,2})?|[0-9]{17,20}[a-b]?[0-9]{0,2}", 0..40)
        ) {
            let names: Vec<String> = set.into_iter().filter(|n| !n.is_empty()).collect();
            let fast: Vec<String> = fold_last_numbers(&names).iter().map(Atom::to_string).collect();
            proptest::prop_assert_eq!(fast, first_fold_by_atoms(&names));
        }

        #[test]
        fn fold_then_expand_is_the_identity(
            set in proptest::collection::btree_set("[ab]{0,2}[0-9]{0,3}(-[a-b][0-9]{1,2})?", 0..40)
        ) {
            let set: std::collections::BTreeSet<String> = set.into_iter().filter(|n| !n.is_empty()).collect();
            let folded = fold(&set);
            let back = if set.is_empty() {
                Vec::new()
            } else {
                expand(&folded, 10_000).unwrap()
            };
            proptest::prop_assert_eq!(back.len(), set.len(), "{}", folded);
            proptest::prop_assert_eq!(back.into_iter().collect::<std::collections::BTreeSet<_>>(), set, "{}", folded);
        }
    }
}
