"""One module per ``fmtkit`` command; each is a thin click shell over the library."""
