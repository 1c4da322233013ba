//! Stage 4, the trust graph: principals, edges built over groups (roles and
//! classes of hosts), and validation (symmetry, transport, names).
//! Placeholder until the graph lands.

use crate::diagnostic::Diagnostic;
use crate::model::{Cluster, HostId};

/// The resolved trust relation of a cluster.
#[derive(Debug, Clone, Default)]
pub struct TrustGraph {}

/// Who may log in to one host as one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The account on the target host.
    pub as_user: String,
    /// The account on the client hosts.
    pub from_user: String,
    /// The client hosts, ascending (may include the target host itself, so
    /// that hosts of one class get identical files).
    pub from_hosts: Vec<HostId>,
}

impl TrustGraph {
    /// Builds the graph and validates it.
    pub fn build(_cluster: &Cluster) -> (TrustGraph, Vec<Diagnostic>) {
        (TrustGraph::default(), Vec::new())
    }

    /// May `from_user@from_host` log in as `to_user@to_host`?
    pub fn allows(
        &self,
        _from_user: &str,
        _from_host: HostId,
        _to_user: &str,
        _to_host: HostId,
    ) -> bool {
        false
    }

    /// Every grant into `host`, sorted by (as_user, from_user).
    pub fn inbound(&self, _host: HostId) -> Vec<Grant> {
        Vec::new()
    }
}
