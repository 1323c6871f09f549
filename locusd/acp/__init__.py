"""``locusd acp``: Locus as an ACP agent (Agent Client Protocol over stdio), so any ACP editor
(Zed, JetBrains, Neovim plugins) drives the user's daemon. A thin translator: everything it
does is a call to the daemon's protocol (docs/protocol.md); docs/acp.md says what maps to what.
"""
