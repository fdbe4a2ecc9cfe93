//! HTML reports: the index, one trend page per suite, run pages. Templates are embedded.
