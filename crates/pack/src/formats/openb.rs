//! openb (todo)
