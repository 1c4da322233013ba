//! The definitions each part of a host gives it ([`super::super::ranges::Part`]):
//! a `host` block, a range's block (typed once, shared by its members), a
//! block inside a range's block, or an inventory entry.
//!
//! A range's block may give each member its own element of `address`,
//! `addresses` and `aliases`: `address = 10.1.1.[1-16]` in `host
//! compute[01-16]` pairs the two ranges element by element. Such values are
//! expanded and typed once, into [`ElementDef`]s, and each member gets its
//! element as an ordinary definition ([`Builder::member_defs`]).

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;

use super::super::merge::{Priority, TypedDef};
use super::super::ranges::{malformed, Part};
use super::super::scope::{Collected, HostRaw};
use super::super::types::Type;
use super::super::values::typed;
use super::{Builder, ScopeDefs, Where};
use crate::codes;
use crate::diagnostic::{did_you_mean, Diagnostic, Label, Span};
use crate::hostlist;
use crate::inventory::Entry;
use crate::load::Module;
use crate::model::{FileSpec, Value};
use crate::syntax::ast::{self, Expr, ExprKind};

/// Host attributes a range's block may give element by element.
pub(super) const ELEMENT_ATTRIBUTES: [&str; 3] = ["address", "addresses", "aliases"];

/// Most values the element-wise items of all ranges may stand for together
/// (each item gives every member one), so no input can exhaust memory with
/// a long list of ranges.
pub(super) const MAX_ELEMENT_VALUES: u64 = 4_000_000;

/// What one part gives its hosts, typed once.
pub(super) struct PartDefs {
    pub defs: ScopeDefs,
    /// A range's element-wise attributes.
    pub elements: Box<[ElementDef]>,
    pub files: Vec<FileSpec>,
    /// True when the part gives several hosts the same definitions (a
    /// range's block), so hosts that differ in nothing else share a config.
    pub shared: bool,
    /// Whether `address` or `addresses` is written in it (refused values
    /// included, so a refused address is not also a missing one).
    pub writes_address: bool,
    /// How many more hosts will ask for a shared part: when none, it
    /// leaves the cache, so 60,000 small ranges do not hold their typed
    /// blocks until the last host is built.
    uses_left: Cell<u64>,
}

impl PartDefs {
    /// Sets an option or declares a file: its hosts need a config (or
    /// files) of their own.
    pub(super) fn defines(&self) -> bool {
        !self.defs.config.is_empty() || !self.files.is_empty()
    }
}

/// An element-wise attribute of a range's block: for each item, one value
/// per member, in the range's order.
pub(super) struct ElementDef {
    option: usize,
    priority: Priority,
    span: Span,
    value_span: Span,
    list: bool,
    items: Vec<(Vec<Value>, Span)>,
}

impl Builder<'_> {
    /// The definitions of `part`, typed once for a part shared by several
    /// hosts (kept until the last of them asked for it), else typed for
    /// this host alone.
    pub(super) fn part_defs(
        &mut self,
        c: &Collected,
        part: Part,
        modules: &[Module],
    ) -> Rc<PartDefs> {
        let key = (part.decl, part.nested);
        if let Some(defs) = self.shared_parts.get(&key) {
            let defs = defs.clone();
            let left = defs.uses_left.get().saturating_sub(1);
            defs.uses_left.set(left);
            if left == 0 {
                self.shared_parts.remove(&key);
            }
            return defs;
        }
        let raw = c.hosts[part.decl as usize];
        // A part's member block is one `ranges::index_hosts` found there.
        let block = match part.nested {
            Part::OWN => raw,
            nested => raw.member(nested as usize - 1).unwrap_or(raw),
        };
        let defs = match block.entry {
            Some(entry) => self.entry_defs(entry, block.is_range()),
            None => Rc::new(self.block_defs(&block, modules)),
        };
        // Each member of a range asks once (a member the range names
        // twice, or another declaration names too, is an error and never
        // asks: its part stays cached, as every part once did).
        if defs.shared {
            let members = hostlist::count(&block.name.node).unwrap_or(0);
            if members > 1 {
                defs.uses_left.set(members - 1);
                self.shared_parts.insert(key, defs.clone());
            }
        }
        defs
    }

    /// A block's definitions; in a range's block, the element-wise ones
    /// apart.
    fn block_defs(&mut self, block: &HostRaw, modules: &[Module]) -> PartDefs {
        let shared = block.is_range();
        let members = if shared {
            hostlist::count(&block.name.node).unwrap_or(0)
        } else {
            1
        };
        let mut defs = ScopeDefs::default();
        let mut elements = Vec::new();
        let mut writes_address = false;
        let scope = block.scope();
        for def in &scope.defs {
            let path = def.path.as_str();
            writes_address |= matches!(path, "address" | "addresses");
            if shared && ELEMENT_ATTRIBUTES.contains(&path) {
                elements.extend(self.element_def(def, block, members));
                continue;
            }
            if let Some(typed) = self.type_def(def, Where::Host) {
                let map = if self.options.list[typed.option].attribute {
                    &mut defs.attrs
                } else {
                    &mut defs.config
                };
                map.entry(typed.option).or_default().push(typed);
            }
        }
        PartDefs {
            defs,
            elements: elements.into_boxed_slice(),
            files: self.files(&scope, modules),
            shared,
            writes_address,
            uses_left: Cell::new(0),
        }
    }

    /// An element-wise attribute of a range of `members` hosts: every item
    /// must stand for exactly one value per member (`E0232` otherwise).
    fn element_def(&mut self, def: &ast::Def, range: &HostRaw, members: u64) -> Option<ElementDef> {
        let option = self.options.index_of(def.path.as_str())?;
        let ty = self.options.list[option].ty.clone();
        let (list, item_ty, items) = match (&ty, &def.value.kind) {
            (Type::List(inner), ExprKind::List(items)) => {
                (true, (**inner).clone(), items.iter().collect())
            }
            (Type::List(_), _) => {
                // Not a list: the usual type error.
                typed(&def.value, &ty, def.path.as_str(), &self.names, self.out);
                return None;
            }
            _ => (false, ty.clone(), vec![&def.value]),
        };
        // Each item gives every member one value: counted before any is made.
        let total = (items.len() as u64).saturating_mul(members);
        if total > self.element_budget {
            self.out.push(too_many_elements(def, total));
            return None;
        }
        self.element_budget -= total;
        let mut values = Vec::with_capacity(items.len());
        for item in items {
            values.push((
                self.element_values(item, &item_ty, def, range, members)?,
                item.span,
            ));
        }
        Some(ElementDef {
            option,
            priority: Priority::of(def.modifier),
            span: def.span(),
            value_span: def.value.span,
            list,
            items: values,
        })
    }

    /// The values one item stands for, one per member of the range, each
    /// typed as the option's items are.
    fn element_values(
        &mut self,
        item: &Expr,
        ty: &Type,
        def: &ast::Def,
        range: &HostRaw,
        members: u64,
    ) -> Option<Vec<Value>> {
        let option = def.path.as_str();
        let Some(text) = item_text(item) else {
            typed(item, ty, option, &self.names, self.out);
            return None;
        };
        let written = ast::Spanned::new(ast::Text::from(text), item.span);
        let count = match hostlist::count(text) {
            Ok(count) => count,
            Err(error) => {
                self.out
                    .push(malformed(&written, &error, &format!("`{option}`")));
                return None;
            }
        };
        if count != members {
            self.out
                .push(count_mismatch(range, members, def, item, count));
            return None;
        }
        let texts = match hostlist::expand(text, members) {
            Ok(texts) => texts,
            Err(error) => {
                self.out
                    .push(malformed(&written, &error, &format!("`{option}`")));
                return None;
            }
        };
        let mut values = Vec::with_capacity(texts.len());
        for element in texts {
            let expr = Expr {
                kind: with_text(&item.kind, element),
                span: item.span,
            };
            // The first bad element is reported; the range's others would
            // say the same.
            values.push(typed(&expr, ty, option, &self.names, self.out)?);
        }
        Some(values)
    }

    /// Member `member`'s elements of a range's element-wise attributes, as
    /// ordinary definitions of the host.
    pub(super) fn member_defs(&self, defs: &PartDefs, member: u32) -> ScopeDefs {
        let mut scope = ScopeDefs::default();
        for element in &defs.elements {
            let at = member as usize;
            let mut values = element.items.iter().map(|(values, _)| values[at].clone());
            let value = if element.list {
                Value::List(values.collect())
            } else {
                values.next().unwrap_or(Value::List(Vec::new()))
            };
            scope
                .attrs
                .entry(element.option)
                .or_default()
                .push(TypedDef {
                    option: element.option,
                    value,
                    priority: element.priority,
                    span: element.span,
                    value_span: element.value_span,
                    item_spans: element.items.iter().map(|(_, span)| *span).collect(),
                });
        }
        scope
    }

    /// An inventory entry's addresses, aliases and roles (its genders
    /// attributes that name roles of the cluster), as definitions written
    /// in a host block, at their places in the inventory. The nodes of one
    /// genders line share their definitions, made once.
    fn entry_defs(&mut self, entry: &Entry, shared: bool) -> Rc<PartDefs> {
        let line = Arc::as_ptr(&entry.attributes) as *const () as usize;
        let by_line =
            entry.address.is_none() && entry.aliases.is_empty() && !entry.attributes.is_empty();
        if by_line {
            if let Some(defs) = self.genders_lines.get(&line) {
                return defs.clone();
            }
        }
        let defs = Rc::new(self.new_entry_defs(entry, shared));
        if by_line {
            self.genders_lines.insert(line, defs.clone());
        }
        defs
    }

    fn new_entry_defs(&mut self, entry: &Entry, shared: bool) -> PartDefs {
        let mut defs = ScopeDefs::default();
        let attr = |name: &str| self.options.index_of(name);
        let (addresses, aliases, roles) = (attr("addresses"), attr("aliases"), attr("roles"));
        if let (Some(option), Some(address)) = (addresses, &entry.address) {
            let text = ast::Text::from(address.node.to_string());
            let kind = if address.node.is_ipv6() {
                ExprKind::Ipv6(text)
            } else {
                ExprKind::Number(text)
            };
            let expr = Expr {
                kind,
                span: address.span,
            };
            if let Some(value) = typed(&expr, &Type::Address, "address", &self.names, self.out) {
                push_list(&mut defs, option, vec![(value, address.span)], address.span);
            }
        }
        if let Some(option) = aliases.filter(|_| !entry.aliases.is_empty()) {
            let items: Vec<(Value, Span)> = entry
                .aliases
                .iter()
                .filter_map(|alias| {
                    let expr = Expr {
                        kind: ExprKind::Str(alias.node.clone()),
                        span: alias.span,
                    };
                    typed(&expr, &Type::Hostname, "aliases", &self.names, self.out)
                        .map(|v| (v, alias.span))
                })
                .collect();
            push_list(&mut defs, option, items, entry.name.span);
        }
        if let Some(option) = roles.filter(|_| !entry.attributes.is_empty()) {
            let items = self.attribute_roles(entry);
            push_list(&mut defs, option, items, entry.name.span);
        }
        PartDefs {
            defs,
            elements: Box::default(),
            files: Vec::new(),
            shared,
            writes_address: entry.address.is_some(),
            uses_left: Cell::new(0),
        }
    }

    /// The attributes of a genders entry that name roles of the cluster.
    /// An attribute one edit or two from a role's name is a warning
    /// (`W0202`), once per attribute: it is likely a typo that would leave
    /// hosts out of the role.
    fn attribute_roles(&mut self, entry: &Entry) -> Vec<(Value, Span)> {
        let mut roles = Vec::new();
        for attribute in entry.attributes.iter() {
            if self.table.roles.contains_key(attribute.node.as_str()) {
                roles.push((Value::Enum(attribute.node.clone()), attribute.span));
                continue;
            }
            if !self.near_roles.insert(attribute.node.to_string()) {
                continue;
            }
            let known = self.table.roles.keys().map(|k| k.as_str());
            if let Some(hint) = did_you_mean(&attribute.node, known) {
                self.out.push(
                    Diagnostic::warning(
                        codes::W0202,
                        format!("genders attribute `{}` is not a role", attribute.node),
                        Label::new(attribute.span, "gives no role"),
                    )
                    .with_note("a genders attribute without a value makes its nodes members of the role of that name; other attributes are the site's own")
                    .with_hint(hint),
                );
            }
        }
        roles
    }
}

/// The text of an item that may be a range: a name, an address or a string.
fn item_text(item: &Expr) -> Option<&str> {
    match &item.kind {
        ExprKind::Number(t) | ExprKind::Ipv6(t) | ExprKind::Str(t) => Some(t),
        ExprKind::Ident(path) => Some(path.as_str()),
        _ => None,
    }
}

/// `kind` with `text` in place of its own.
fn with_text(kind: &ExprKind, text: String) -> ExprKind {
    let text = ast::Text::from(text);
    match kind {
        ExprKind::Number(_) => ExprKind::Number(text),
        ExprKind::Ipv6(_) => ExprKind::Ipv6(text),
        ExprKind::Ident(_) => ExprKind::Ident(ast::Ident(text)),
        _ => ExprKind::Str(text),
    }
}

fn push_list(defs: &mut ScopeDefs, option: usize, items: Vec<(Value, Span)>, span: Span) {
    if items.is_empty() {
        return;
    }
    let (values, spans): (Vec<Value>, Vec<Span>) = items.into_iter().unzip();
    defs.attrs.entry(option).or_default().push(TypedDef {
        option,
        value: Value::List(values),
        priority: Priority::Plain,
        span,
        value_span: spans[0],
        item_spans: spans,
    });
}

/// `E0231`: element-wise values beyond [`MAX_ELEMENT_VALUES`].
fn too_many_elements(def: &ast::Def, total: u64) -> Diagnostic {
    let option = def.path.as_str();
    Diagnostic::error(
        codes::E0231,
        format!(
            "`{option}` of this range stands for {total} values, more than the limit of {MAX_ELEMENT_VALUES} for all ranges"
        ),
        Label::new(def.value.span, format!("{total} values")),
    )
    .with_hint("give the members fewer aliases or addresses each, or split the cluster")
}

/// `E0232`: an element-wise value that does not give every member of its
/// range one element.
fn count_mismatch(
    range: &HostRaw,
    members: u64,
    def: &ast::Def,
    item: &Expr,
    count: u64,
) -> Diagnostic {
    let option = def.path.as_str();
    let what = match option {
        "aliases" => "alias",
        _ => "address",
    };
    let plural = |n: u64, word: &str| {
        if n == 1 {
            format!("1 {word}")
        } else if word.ends_with('s') {
            format!("{n} {word}es")
        } else {
            format!("{n} {word}s")
        }
    };
    Diagnostic::error(
        codes::E0232,
        format!(
            "the range `{}` names {}, but this `{option}` gives {}",
            range.name.node,
            plural(members, "host"),
            plural(count, what)
        ),
        Label::new(item.span, plural(count, what)),
    )
    .with_label(range.name.span, plural(members, "host"))
    .with_note(format!("a range's `{option}` gives its members one {what} each, paired in order: `compute[01-16]` with `10.1.1.[1-16]`"))
    .with_hint(format!("write a range of {} for `{option}`, or set it in the blocks of single hosts", plural(members, what)))
}
