//! The server's integration tests, one binary: each module runs the real `chanlayer`
//! binary (and, for the cluster modules, a real NATS cluster) on loopback. One binary links
//! once instead of once per file.

mod channels;
mod cli;
mod cluster;
mod cluster_handover;
mod cluster_queues;
mod config_file;
mod connections;
mod groups;
mod hostile;
mod metrics;
mod namespaces;
mod operations;
mod security;
mod sessions;
mod stream_ends;
mod support;
mod unix_sockets;
