//! PageRank over a weighted directed graph, personalized: the random walk restarts at the
//! personalization's nodes (uniformly at every node when there is none), and the rank of
//! nodes without out-edges is spread the same way.

/// A graph of `nodes` nodes as out-edge lists: `edges[src]` holds `(dst, weight)`.
pub struct Graph {
    pub edges: Vec<Vec<(u32, f64)>>,
}

pub const DAMPING: f64 = 0.85;
const MAX_ITERATIONS: usize = 50;
/// Stop when the ranks (summing to 1) moved less than this per node on average (L1 over all
/// nodes below `nodes × TOLERANCE`, the criterion networkx's `pagerank` uses).
const TOLERANCE: f64 = 1e-6;

impl Graph {
    /// The ranks (summing to 1). `personalization` holds (node, weight); an empty one is
    /// uniform. `start` is an earlier result to start from (fewer iterations after a small
    /// change).
    pub fn pagerank(&self, personalization: &[(u32, f64)], start: Option<&[f64]>) -> Vec<f64> {
        let out_weight: Vec<f64> = self
            .edges
            .iter()
            .map(|out| out.iter().map(|(_, w)| w).sum())
            .collect();
        pagerank_by(&out_weight, personalization, start, |share, next| {
            for (src, out) in self.edges.iter().enumerate() {
                if share[src] == 0.0 {
                    continue;
                }
                for (dst, w) in out {
                    next[*dst as usize] += share[src] * w;
                }
            }
        })
    }
}

/// PageRank over a graph given by how it spreads rank rather than by its edges:
/// `out_weight[src]` is the total weight of `src`'s out-edges, and `propagate(share, next)`
/// adds `share[src] * weight(src → dst)` to `next[dst]` for every edge. A graph whose edges
/// are too many to list (every user of a name to every definer of it) can do that summing
/// its own way.
pub fn pagerank_by(
    out_weight: &[f64],
    personalization: &[(u32, f64)],
    start: Option<&[f64]>,
    mut propagate: impl FnMut(&[f64], &mut [f64]),
) -> Vec<f64> {
    let n = out_weight.len();
    if n == 0 {
        return Vec::new();
    }
    let mut restart = vec![0.0; n];
    let total: f64 = personalization.iter().map(|(_, w)| w.max(0.0)).sum();
    if total > 0.0 {
        for (node, weight) in personalization {
            if let Some(slot) = restart.get_mut(*node as usize) {
                *slot += weight.max(0.0) / total;
            }
        }
    } else {
        restart.iter_mut().for_each(|r| *r = 1.0 / n as f64);
    }
    let mut rank = match start {
        Some(start) if start.len() == n => start.to_vec(),
        _ => vec![1.0 / n as f64; n],
    };
    let mut next = vec![0.0; n];
    let mut share = vec![0.0; n];
    for _ in 0..MAX_ITERATIONS {
        let mut dangling = 0.0;
        for src in 0..n {
            if out_weight[src] > 0.0 {
                share[src] = DAMPING * rank[src] / out_weight[src];
            } else {
                share[src] = 0.0;
                dangling += rank[src];
            }
        }
        next.iter_mut().for_each(|x| *x = 0.0);
        propagate(&share, &mut next);
        let spread = (1.0 - DAMPING) + DAMPING * dangling;
        let mut moved = 0.0;
        for i in 0..n {
            next[i] += spread * restart[i];
            moved += (next[i] - rank[i]).abs();
        }
        std::mem::swap(&mut rank, &mut next);
        if moved < TOLERANCE * n as f64 {
            break;
        }
    }
    rank
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_node_everyone_points_at_ranks_first_and_ranks_sum_to_one() {
        // 1, 2 and 3 point at 0; 0 points at 1.
        let graph = Graph {
            edges: vec![
                vec![(1, 1.0)],
                vec![(0, 1.0)],
                vec![(0, 1.0)],
                vec![(0, 1.0)],
            ],
        };
        let rank = graph.pagerank(&[], None);
        assert!((rank.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert!(rank[0] > rank[1] && rank[1] > rank[2], "{rank:?}");
        assert!((rank[2] - rank[3]).abs() < 1e-12);
    }

    #[test]
    fn personalization_pulls_rank_toward_its_nodes_and_what_they_point_at() {
        // Two separate pairs: 0 → 1 and 2 → 3.
        let graph = Graph {
            edges: vec![vec![(1, 1.0)], vec![], vec![(3, 1.0)], vec![]],
        };
        let plain = graph.pagerank(&[], None);
        assert!((plain[1] - plain[3]).abs() < 1e-12);
        let toward_2 = graph.pagerank(&[(2, 1.0)], None);
        assert!(toward_2[3] > toward_2[1] * 5.0, "{toward_2:?}");
        // Starting from an earlier result converges to the same ranks.
        let again = graph.pagerank(&[(2, 1.0)], Some(&plain));
        for (a, b) in again.iter().zip(&toward_2) {
            assert!((a - b).abs() < 1e-4);
        }
    }
}
