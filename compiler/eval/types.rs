//! Option types: the resolved form of a declaration's `TypeExpr`.

use std::fmt;

use crate::syntax::ast::{TypeExpr, TypeKind};

/// The type of an option, checked against every value written for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Type {
    Bool,
    /// Bounds inclusive.
    Int {
        min: Option<i64>,
        max: Option<i64>,
    },
    String,
    Enum(Vec<String>),
    List(Box<Type>),
    Address,
    Hostname,
    Interface,
    Username,
    Path,
    /// One path component (a service or script name).
    FileName,
    Mode,
    Version,
    Role,
    HostOrRole,
}

impl Type {
    /// The type a declaration's type expression names.
    pub(crate) fn from_ast(ty: &TypeExpr) -> Type {
        match &ty.kind {
            TypeKind::Bool => Type::Bool,
            TypeKind::Int { min, max } => Type::Int {
                min: *min,
                max: *max,
            },
            TypeKind::String => Type::String,
            TypeKind::Enum(variants) => {
                Type::Enum(variants.iter().map(|v| v.node.to_string()).collect())
            }
            TypeKind::List(inner) => Type::List(Box::new(Type::from_ast(inner))),
            TypeKind::Address => Type::Address,
            TypeKind::Hostname => Type::Hostname,
            TypeKind::Interface => Type::Interface,
            TypeKind::Username => Type::Username,
            TypeKind::Path => Type::Path,
            TypeKind::FileName => Type::FileName,
            TypeKind::Mode => Type::Mode,
            TypeKind::Version => Type::Version,
            TypeKind::Role => Type::Role,
            TypeKind::HostOrRole => Type::HostOrRole,
        }
    }

    /// True for `list(T)`: its definitions concatenate instead of conflicting.
    pub(crate) fn is_list(&self) -> bool {
        matches!(self, Type::List(_))
    }

    /// True when `<`, `<=`, `>` and `>=` mean something for values of this type.
    pub(crate) fn is_ordered(&self) -> bool {
        matches!(self, Type::Int { .. } | Type::Version | Type::Mode)
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Bool => f.write_str("bool"),
            Type::Int {
                min: None,
                max: None,
            } => f.write_str("int"),
            Type::Int { min, max } => {
                let bound = |b: &Option<i64>| b.map(|v| v.to_string()).unwrap_or_default();
                write!(f, "int({}..{})", bound(min), bound(max))
            }
            Type::String => f.write_str("string"),
            Type::Enum(variants) => write!(f, "enum({})", variants.join(", ")),
            Type::List(inner) => write!(f, "list({inner})"),
            Type::Address => f.write_str("address"),
            Type::Hostname => f.write_str("hostname"),
            Type::Interface => f.write_str("interface"),
            Type::Username => f.write_str("username"),
            Type::Path => f.write_str("path"),
            Type::FileName => f.write_str("filename"),
            Type::Mode => f.write_str("mode"),
            Type::Version => f.write_str("version"),
            Type::Role => f.write_str("role"),
            Type::HostOrRole => f.write_str("host_or_role"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_print_as_written() {
        let cases = [
            (
                Type::Int {
                    min: Some(1),
                    max: Some(65535),
                },
                "int(1..65535)",
            ),
            (
                Type::Int {
                    min: None,
                    max: Some(9),
                },
                "int(..9)",
            ),
            (
                Type::Enum(vec!["rsh".into(), "ssh".into()]),
                "enum(rsh, ssh)",
            ),
            (Type::List(Box::new(Type::Role)), "list(role)"),
        ];
        for (ty, text) in cases {
            assert_eq!(ty.to_string(), text);
        }
    }
}
