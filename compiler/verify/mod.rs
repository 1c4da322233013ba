//! `accord verify`: brings an emitted build up in Linux network namespaces
//! with real sshd and in.rshd and checks every pair of principals.
//! Placeholder until verify lands.
