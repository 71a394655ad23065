//! Context: what the model sees, within a token budget.
//!
//! - `tokens`: the tokenizer-free token estimate.
pub mod tokens;
