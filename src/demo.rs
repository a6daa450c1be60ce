//! `studiod demo`: a whole booth on one machine, loopback only.

use std::path::PathBuf;

use anyhow::Result;

pub async fn run(_dir: Option<PathBuf>) -> Result<()> {
    anyhow::bail!("demo not implemented yet")
}
