//! Inventories a site already keeps, for `import hosts from "FILE";`: a
//! genders file (`nodeattr`, `pdsh -g`) or an `/etc/hosts`-format file.
//!
//! Reading an inventory gives host entries (names, addresses, aliases,
//! attributes) whose spans point into the inventory file, so every mistake
//! the evaluator finds in them (a bad name, a duplicate address, a range
//! that does not parse) is shown at its line in the inventory. The
//! evaluator turns entries into ordinary hosts: `docs/language.md`
//! ("Inventories") has the rules.
//!
//! The format is told by the first line that holds data: an address first
//! (`10.0.0.1 node1`) is the hosts format, anything else genders. Malformed
//! lines are `E0106`, each at its place; the rest of the file is still read.

use std::net::IpAddr;
use std::sync::Arc;

use crate::codes;
use crate::diagnostic::{Diagnostic, FileId, Label, Span};
use crate::syntax::ast::{Name, Spanned};

/// One inventory file, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    pub file: FileId,
    pub format: Format,
    /// In file order; one name may have several entries (genders lists a
    /// node on several lines; a hosts file gives it one line per address).
    pub entries: Vec<Entry>,
    /// The `import hosts from` that read it.
    pub imported_at: Span,
}

/// The two formats accord reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `node[1-16],head attr,attr=value`: libgenders(3)'s format.
    Genders,
    /// `ADDRESS NAME ALIAS...`: hosts(5)'s format.
    Hosts,
}

/// What one line says about one name (or one range of names, in genders).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The host's name as written: a name, or a host range in genders.
    pub name: Name,
    /// The line's list of names (every node of a genders line; a hosts
    /// file's name): what a finding about all of them points at.
    pub line: Span,
    /// A hosts file's address.
    pub address: Option<Spanned<IpAddr>>,
    /// A hosts file's other names.
    pub aliases: Vec<Name>,
    /// Genders attributes without a value; those that name a role of the
    /// cluster make the host a member of it. Shared by the nodes of one
    /// line: a line of many nodes and many attributes costs their sum, not
    /// their product.
    pub attributes: Arc<[Name]>,
}

impl Format {
    /// The format's name, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Format::Genders => "genders file",
            Format::Hosts => "hosts file",
        }
    }
}

/// Reads an inventory's text; malformed lines are reported and skipped.
pub fn parse(file: FileId, text: &str, imported_at: Span) -> (Inventory, Vec<Diagnostic>) {
    let format = detect(text);
    let mut reader = Reader {
        file,
        entries: Vec::new(),
        diagnostics: Vec::new(),
    };
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let data = line.split('#').next().unwrap_or_default();
        let data = data.trim_end_matches(['\n', '\r']);
        match format {
            Format::Genders => reader.genders_line(data, offset),
            Format::Hosts => reader.hosts_line(data, offset),
        }
        offset += line.len();
        if reader.diagnostics.len() > MAX_ERRORS {
            break;
        }
    }
    reader.entries.shrink_to_fit();
    let inventory = Inventory {
        file,
        format,
        entries: reader.entries,
        imported_at,
    };
    (inventory, reader.diagnostics)
}

/// Most malformed lines reported for one inventory: past them the rest of
/// the file is not read (one more error says so).
pub const MAX_ERRORS: usize = 100;

/// The hosts format when the first line holding data starts with an
/// address, genders otherwise.
fn detect(text: &str) -> Format {
    let first = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .find(|l| !l.is_empty());
    match first.and_then(|l| l.split_whitespace().next()) {
        Some(word) if word.parse::<IpAddr>().is_ok() => Format::Hosts,
        _ => Format::Genders,
    }
}

struct Reader {
    file: FileId,
    entries: Vec<Entry>,
    diagnostics: Vec<Diagnostic>,
}

/// The white-space separated words of a line, with their offsets.
fn words(line: &str, offset: usize) -> impl Iterator<Item = (&str, usize)> {
    line.split([' ', '\t'])
        .scan(offset, |at, word| {
            let start = *at;
            *at += word.len() + 1;
            Some((word, start))
        })
        .filter(|(word, _)| !word.is_empty())
}

impl Reader {
    fn span(&self, start: usize, len: usize) -> Span {
        Span::new(self.file, start..start + len)
    }

    fn name(&self, text: &str, start: usize) -> Name {
        Spanned::new(text.into(), self.span(start, text.len()))
    }

    fn error(&mut self, at: Span, message: String, label: &'static str, hint: &'static str) {
        if self.diagnostics.len() == MAX_ERRORS {
            self.diagnostics.push(
                Diagnostic::error(
                    codes::E0106,
                    format!("more than {MAX_ERRORS} malformed lines; the rest of the inventory is not read"),
                    Label::new(at, "stopped here"),
                )
                .with_hint("is this an inventory (a genders or hosts file)?"),
            );
            return;
        }
        self.diagnostics
            .push(Diagnostic::error(codes::E0106, message, Label::new(at, label)).with_hint(hint));
    }

    /// `node1,node[2-4] attr,attr=value`.
    fn genders_line(&mut self, line: &str, offset: usize) {
        let fields: Vec<(&str, usize)> = words(line, offset).collect();
        let Some(&(nodes, nodes_at)) = fields.first() else {
            return;
        };
        if let Some(&(extra, at)) = fields.get(2) {
            let span = self.span(at, extra.len());
            self.error(
                span,
                format!("a genders line has two fields, the nodes and their attributes; `{}` is a third", shown(extra)),
                "a third field",
                "write the attributes without spaces, separated by `,` (`compute,rack=1`), as libgenders requires",
            );
            return;
        }
        let mut attributes = Vec::new();
        if let Some(&(list, list_at)) = fields.get(1) {
            for (attribute, at) in split_commas(list, list_at) {
                let key = attribute.split_once('=').map_or(attribute, |(k, _)| k);
                if key.is_empty() {
                    let span = self.span(at, attribute.len().max(1));
                    self.error(
                        span,
                        "an attribute without a name".into(),
                        "no name",
                        "attributes are `name` or `name=value`, separated by `,`",
                    );
                    continue;
                }
                // Attributes with a value are data (`rack=1`), not groups.
                if !attribute.contains('=') {
                    attributes.push(self.name(key, at));
                }
            }
        }
        let attributes: Arc<[Name]> = attributes.into();
        for (node, at) in split_commas(nodes, nodes_at) {
            if node.is_empty() {
                let span = self.span(at, 1);
                self.error(
                    span,
                    "an empty node name".into(),
                    "nothing between the commas",
                    "nodes are separated by one `,` (`head,compute[01-16]`)",
                );
                continue;
            }
            self.entries.push(Entry {
                name: self.name(node, at),
                line: self.span(nodes_at, nodes.len()),
                address: None,
                aliases: Vec::new(),
                attributes: attributes.clone(),
            });
        }
    }

    /// `ADDRESS NAME ALIAS...`; the machine's own entries (loopback,
    /// multicast: `localhost`, `ip6-allnodes`) are not hosts and are left out.
    fn hosts_line(&mut self, line: &str, offset: usize) {
        let mut fields = words(line, offset);
        let Some((address, at)) = fields.next() else {
            return;
        };
        let names: Vec<(&str, usize)> = fields.collect();
        let address_span = self.span(at, address.len());
        let Ok(parsed) = address.parse::<IpAddr>() else {
            self.error(
                address_span,
                format!("`{}` is not an address", shown(address)),
                "a hosts-file line starts with an address",
                "write `ADDRESS NAME [ALIAS...]`, as in /etc/hosts (`10.0.0.1 node1 node1.lan`)",
            );
            return;
        };
        if names.is_empty() {
            self.error(
                address_span,
                format!("`{address}` has no name"),
                "an address without a name",
                "write `ADDRESS NAME [ALIAS...]`, as in /etc/hosts (`10.0.0.1 node1 node1.lan`)",
            );
            return;
        }
        if is_machine_entry(parsed) {
            return;
        }
        // The host is named by its short name when the line has one
        // (`10.0.0.1 node1.lan node1`); its other names are aliases.
        let primary = names
            .iter()
            .position(|(n, _)| !n.contains('.'))
            .unwrap_or(0);
        let (name, name_at) = names[primary];
        let aliases = names
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != primary)
            .map(|(_, (n, at))| self.name(n, *at))
            .collect();
        self.entries.push(Entry {
            name: self.name(name, name_at),
            line: self.span(name_at, name.len()),
            address: Some(Spanned::new(parsed, address_span)),
            aliases,
            attributes: Arc::new([]),
        });
    }
}

/// Loopback, multicast, unspecified and broadcast entries: every machine's
/// own lines of /etc/hosts (`127.0.0.1 localhost`, `ff02::1
/// ip6-allnodes`), never one host's address.
fn is_machine_entry(address: IpAddr) -> bool {
    address.is_loopback()
        || address.is_multicast()
        || address.is_unspecified()
        || matches!(address, IpAddr::V4(a) if a.is_broadcast())
}

/// Splits at the commas outside brackets (`a,n[1,3-4],b`), with offsets.
fn split_commas(text: &str, offset: usize) -> Vec<(&str, usize)> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth <= 0 => {
                out.push((&text[start..i], offset + start));
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push((&text[start..], offset + start));
    out
}

/// A word of the file as a message shows it: at most 80 bytes, escaped.
fn shown(word: &str) -> String {
    let mut end = word.len().min(80);
    while !word.is_char_boundary(end) {
        end -= 1;
    }
    let cut = if end < word.len() { "..." } else { "" };
    format!("{}{cut}", word[..end].escape_debug())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> (Inventory, Vec<String>) {
        let (inventory, diagnostics) = parse(FileId(1), text, Span::new(FileId(0), 0..0));
        let messages = diagnostics
            .into_iter()
            .map(|d| d.message.into_owned())
            .collect();
        (inventory, messages)
    }

    fn names(inventory: &Inventory) -> Vec<&str> {
        inventory
            .entries
            .iter()
            .map(|e| e.name.node.as_str())
            .collect()
    }

    #[test]
    fn reads_a_genders_file_with_ranges_and_several_lines_per_node() {
        let text = "# slc cluster\nslci,slcj,slc[0-15]  eth2=e%n,cluster=slc,all\nslci passwdhost\t# the head\nslc[1-15]            compute\n\n";
        let (inventory, errors) = read(text);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(inventory.format, Format::Genders);
        assert_eq!(
            names(&inventory),
            ["slci", "slcj", "slc[0-15]", "slci", "slc[1-15]"]
        );
        let attributes = |i: usize| -> Vec<&str> {
            inventory.entries[i]
                .attributes
                .iter()
                .map(|a| a.node.as_str())
                .collect()
        };
        assert_eq!(
            attributes(2),
            ["all"],
            "valued attributes are data, not groups"
        );
        assert_eq!(attributes(4), ["compute"]);
        let span = inventory.entries[2].name.span;
        assert_eq!(&text[span.range()], "slc[0-15]");
        let span = inventory.entries[4].attributes[0].span;
        assert_eq!(&text[span.range()], "compute");
    }

    #[test]
    fn reads_a_hosts_file_and_leaves_the_machines_own_lines_out() {
        let text = "127.0.0.1\tlocalhost\n127.0.1.1 build.example build\n::1 localhost ip6-localhost\nff02::1 ip6-allnodes\n\n10.1.0.1 head.hpc.lan head  # the head\n10.1.1.1 compute01\nfd00::1:1 compute01\n";
        let (inventory, errors) = read(text);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(inventory.format, Format::Hosts);
        assert_eq!(names(&inventory), ["head", "compute01", "compute01"]);
        assert_eq!(inventory.entries[0].aliases[0].node, "head.hpc.lan");
        let address = inventory.entries[2].address.as_ref().unwrap();
        assert_eq!(address.node.to_string(), "fd00::1:1");
        assert_eq!(&text[address.span.range()], "fd00::1:1");
    }

    #[test]
    fn malformed_lines_are_located_and_the_rest_is_read() {
        let (inventory, errors) = read("10.0.0.1 a\n10.0.0.300 b\n10.0.0.3\n10.0.0.4 d\n");
        assert_eq!(
            errors,
            ["`10.0.0.300` is not an address", "`10.0.0.3` has no name"]
        );
        assert_eq!(names(&inventory), ["a", "d"]);
        let (inventory, errors) = read("a,,b compute\nc compute, rack=1\nd ,=x,ok\n");
        assert_eq!(
            errors,
            [
                "an empty node name",
                "a genders line has two fields, the nodes and their attributes; `rack=1` is a third",
                "an attribute without a name",
                "an attribute without a name",
            ]
        );
        assert_eq!(names(&inventory), ["a", "b", "d"]);
    }

    #[test]
    fn errors_stop_after_a_hundred() {
        let (_, errors) = read(&"10.0.0.1 a\nnot-an-address x\n".repeat(500));
        assert_eq!(errors.len(), MAX_ERRORS + 1);
        assert!(errors
            .last()
            .unwrap()
            .starts_with("more than 100 malformed lines"));
    }
}
