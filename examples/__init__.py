"""Examples from docs/frame-tracking-guide.md; tests run them, so the guide stays true."""
