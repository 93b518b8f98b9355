//! Merkle trees as in RFC 6962 / RFC 9162: domain-separated leaf and node hashes, tree heads,
//! inclusion and consistency proofs and their verification.
//!
//! Proofs are computed from the hashes of *perfect* subtrees (2^level leaves, aligned): every
//! subtree RFC 6962 needs is either one of those or is built from O(log n) of them, so a store
//! that keeps them (one per leaf and per completed pair) answers any proof in O(log n) reads.

use sha2::{Digest, Sha256};

/// A 32-byte hash.
pub type Hash = [u8; 32];

/// `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The hash of the empty tree.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Where perfect-subtree hashes come from.
pub trait Nodes {
    /// The hash of the perfect subtree at `level` (2^level leaves) number `index`, if stored.
    fn node(&self, level: u32, index: u64) -> Option<Hash>;
}

/// Why a proof could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf {index} is not in a tree of size {size}")]
    OutOfRange { index: u64, size: u64 },
    #[error(
        "no consistency proof from size {old} to size {new}: the old size must be between 1 and the new size"
    )]
    BadSizes { old: u64, new: u64 },
    #[error("the tree is missing the node at level {level}, index {index}")]
    Missing { level: u32, index: u64 },
}

/// The largest power of two strictly less than `n` (n ≥ 2).
fn split(n: u64) -> u64 {
    let mut k = 1u64;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// MTH of leaves `start .. start + len`.
pub fn subtree<N: Nodes + ?Sized>(nodes: &N, start: u64, len: u64) -> Result<Hash, ProofError> {
    if len == 0 {
        return Ok(empty_root());
    }
    if len.is_power_of_two() && start.is_multiple_of(len) {
        let level = len.trailing_zeros();
        let index = start / len;
        return nodes
            .node(level, index)
            .ok_or(ProofError::Missing { level, index });
    }
    let k = split(len);
    let left = subtree(nodes, start, k)?;
    let right = subtree(nodes, start + k, len - k)?;
    Ok(node_hash(&left, &right))
}

/// The root of the first `size` leaves.
pub fn root<N: Nodes + ?Sized>(nodes: &N, size: u64) -> Result<Hash, ProofError> {
    subtree(nodes, 0, size)
}

/// The audit path of leaf `index` in the tree of the first `size` leaves (RFC 6962 PATH).
pub fn inclusion_proof<N: Nodes + ?Sized>(
    nodes: &N,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, ProofError> {
    if index >= size {
        return Err(ProofError::OutOfRange { index, size });
    }
    let mut proof = Vec::new();
    path(nodes, index, 0, size, &mut proof)?;
    Ok(proof)
}

fn path<N: Nodes + ?Sized>(
    nodes: &N,
    m: u64,
    start: u64,
    n: u64,
    out: &mut Vec<Hash>,
) -> Result<(), ProofError> {
    if n <= 1 {
        return Ok(());
    }
    let k = split(n);
    if m < k {
        path(nodes, m, start, k, out)?;
        out.push(subtree(nodes, start + k, n - k)?);
    } else {
        path(nodes, m - k, start + k, n - k, out)?;
        out.push(subtree(nodes, start, k)?);
    }
    Ok(())
}

/// The consistency proof between the trees of the first `old` and `new` leaves (RFC 6962 PROOF).
pub fn consistency_proof<N: Nodes + ?Sized>(
    nodes: &N,
    old: u64,
    new: u64,
) -> Result<Vec<Hash>, ProofError> {
    if old == 0 || old > new {
        return Err(ProofError::BadSizes { old, new });
    }
    let mut proof = Vec::new();
    if old < new {
        subproof(nodes, old, 0, new, true, &mut proof)?;
    }
    Ok(proof)
}

fn subproof<N: Nodes + ?Sized>(
    nodes: &N,
    m: u64,
    start: u64,
    n: u64,
    complete: bool,
    out: &mut Vec<Hash>,
) -> Result<(), ProofError> {
    if m == n {
        if !complete {
            out.push(subtree(nodes, start, n)?);
        }
        return Ok(());
    }
    let k = split(n);
    if m <= k {
        subproof(nodes, m, start, k, complete, out)?;
        out.push(subtree(nodes, start + k, n - k)?);
    } else {
        subproof(nodes, m - k, start + k, n - k, false, out)?;
        out.push(subtree(nodes, start, k)?);
    }
    Ok(())
}

/// Verifies an inclusion proof (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && r == *root
}

/// Verifies a consistency proof (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old == 0 || old > new {
        return false;
    }
    if old == new {
        return proof.is_empty() && old_root == new_root;
    }
    let mut path: Vec<Hash> = proof.to_vec();
    if old.is_power_of_two() {
        path.insert(0, *old_root);
    }
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let (mut fnode, mut snode) = (old - 1, new - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && fr == *old_root && sr == *new_root
}

/// A tree held in memory: every perfect subtree hash, level by level.
#[derive(Debug, Clone, Default)]
pub struct MemoryTree {
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    pub fn new() -> Self {
        MemoryTree::default()
    }

    pub fn len(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends a leaf hash and the perfect subtrees it completes.
    pub fn push(&mut self, leaf: Hash) {
        let mut level = 0;
        let mut hash = leaf;
        loop {
            if self.levels.len() <= level {
                self.levels.push(Vec::new());
            }
            self.levels[level].push(hash);
            let n = self.levels[level].len();
            if !n.is_multiple_of(2) {
                break;
            }
            hash = node_hash(&self.levels[level][n - 2], &self.levels[level][n - 1]);
            level += 1;
        }
    }

    pub fn root(&self) -> Hash {
        root(self, self.len()).unwrap_or_else(|_| empty_root())
    }
}

impl Nodes for MemoryTree {
    fn node(&self, level: u32, index: u64) -> Option<Hash> {
        self.levels
            .get(level as usize)?
            .get(usize::try_from(index).ok()?)
            .copied()
    }
}

/// The perfect-subtree nodes a new leaf completes: `(level, index, hash)` for the leaf and
/// every pair it closes. `get` reads existing nodes.
pub fn completed_nodes(
    leaf_index: u64,
    leaf: Hash,
    get: impl Fn(u32, u64) -> Option<Hash>,
) -> Vec<(u32, u64, Hash)> {
    let mut out = vec![(0u32, leaf_index, leaf)];
    let (mut level, mut index, mut hash) = (0u32, leaf_index, leaf);
    while !index.is_multiple_of(2) {
        let Some(left) = get(level, index - 1) else {
            break;
        };
        hash = node_hash(&left, &hash);
        level += 1;
        index /= 2;
        out.push((level, index, hash));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference: MTH computed directly from the leaves.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    fn tree(n: u64) -> (MemoryTree, Vec<Hash>) {
        let mut t = MemoryTree::new();
        let mut leaves = Vec::new();
        for i in 0..n {
            let l = leaf_hash(format!("entry {i}").as_bytes());
            t.push(l);
            leaves.push(l);
        }
        (t, leaves)
    }

    #[test]
    fn roots_match_the_definition() {
        for n in 0..70u64 {
            let (t, leaves) = tree(n);
            assert_eq!(t.root(), mth(&leaves), "size {n}");
        }
    }

    #[test]
    fn every_inclusion_proof_verifies_and_a_wrong_one_does_not() {
        let (t, leaves) = tree(37);
        for size in 1..=37u64 {
            let r = root(&t, size).expect("root");
            for i in 0..size {
                let p = inclusion_proof(&t, i, size).expect("proof");
                assert!(
                    verify_inclusion(&leaves[i as usize], i, size, &p, &r),
                    "{i}/{size}"
                );
                if size > 1 {
                    assert!(!verify_inclusion(
                        &leaves[((i + 1) % size) as usize],
                        i,
                        size,
                        &p,
                        &r
                    ));
                }
            }
        }
    }

    #[test]
    fn every_consistency_proof_verifies_and_a_wrong_root_does_not() {
        let (t, _) = tree(33);
        for new in 1..=33u64 {
            let nr = root(&t, new).expect("root");
            for old in 1..=new {
                let or = root(&t, old).expect("root");
                let p = consistency_proof(&t, old, new).expect("proof");
                assert!(verify_consistency(old, new, &or, &nr, &p), "{old}->{new}");
                if old < new {
                    assert!(
                        !verify_consistency(old, new, &nr, &nr, &p),
                        "{old}->{new} wrong root"
                    );
                }
            }
        }
    }

    #[test]
    fn proofs_are_logarithmic() {
        let (t, _) = tree(1000);
        assert!(inclusion_proof(&t, 500, 1000).expect("proof").len() <= 10);
        assert!(consistency_proof(&t, 333, 1000).expect("proof").len() <= 20);
    }

    #[test]
    fn completed_nodes_match_the_memory_tree() {
        let (t, leaves) = tree(12);
        let got = completed_nodes(11, leaves[11], |l, i| t.node(l, i));
        assert_eq!(got.len(), 3);
        assert_eq!(got[2], (2, 2, t.node(2, 2).expect("node")));
    }
}
