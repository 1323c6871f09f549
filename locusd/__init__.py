"""locusd: the local daemon and the `locus` CLI shim (built in the daemon issue).

The package exists now so the layout matches docs/architecture.md; the console scripts
`locus` and `locusd` are reserved for it."""
