//! Sorted series-id lists (postings) and the set operations the index
//! planner needs. Intersections gallop (exponential search) through the
//! longer list, so `{job="x"}` ∩ `{__name__="rare"}` costs about
//! `small * log(large)` instead of `small + large`.

/// Intersects sorted, deduplicated lists.
pub fn intersect(a: &[u64], b: &[u64]) -> Vec<u64> {
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let mut out = Vec::with_capacity(small.len());
    if small.is_empty() {
        return out;
    }
    // Linear merging wins when sizes are close; galloping when they differ.
    if large.len() / small.len() < 16 {
        let (mut i, mut j) = (0, 0);
        while i < small.len() && j < large.len() {
            match small[i].cmp(&large[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    out.push(small[i]);
                    i += 1;
                    j += 1;
                }
            }
        }
        return out;
    }
    let mut lo = 0usize;
    for &x in small {
        // Gallop from `lo` to bracket x, then binary search the bracket.
        let mut step = 1usize;
        let mut hi = lo;
        while hi < large.len() && large[hi] < x {
            lo = hi + 1;
            hi = lo + step;
            step *= 2;
        }
        // large[hi] >= x (or hi is past the end): search lo..=hi.
        let hi = (hi + 1).min(large.len());
        if lo >= hi {
            break;
        }
        match large[lo..hi].binary_search(&x) {
            Ok(i) => {
                out.push(x);
                lo += i + 1;
            }
            Err(i) => lo += i,
        }
        if lo >= large.len() {
            break;
        }
    }
    out
}

/// Intersects many lists, smallest first.
pub fn intersect_all(mut lists: Vec<Vec<u64>>) -> Vec<u64> {
    lists.sort_by_key(|l| l.len());
    let mut iter = lists.into_iter();
    let Some(mut acc) = iter.next() else {
        return Vec::new();
    };
    for l in iter {
        if acc.is_empty() {
            break;
        }
        acc = intersect(&acc, &l);
    }
    acc
}

/// Unions sorted lists into one sorted, deduplicated list.
pub fn union_all(lists: Vec<Vec<u64>>) -> Vec<u64> {
    match lists.len() {
        0 => Vec::new(),
        1 => lists.into_iter().next().unwrap_or_default(),
        2 => union2(&lists[0], &lists[1]),
        _ => {
            let mut all: Vec<u64> = lists.concat();
            all.sort_unstable();
            all.dedup();
            all
        }
    }
}

fn union2(a: &[u64], b: &[u64]) -> Vec<u64> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

/// Removes every element of sorted `remove` from sorted `list`, in place.
pub fn subtract_in_place(list: &mut Vec<u64>, remove: &[u64]) {
    if remove.is_empty() || list.is_empty() {
        return;
    }
    let mut j = 0;
    list.retain(|x| {
        while j < remove.len() && remove[j] < *x {
            j += 1;
        }
        !(j < remove.len() && remove[j] == *x)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[u64], b: &[u64]) -> Vec<u64> {
        a.iter().filter(|x| b.contains(x)).copied().collect()
    }

    #[test]
    fn intersect_matches_naive_for_all_shapes() {
        let big: Vec<u64> = (0..5000).map(|i| i * 3).collect();
        let cases: Vec<Vec<u64>> = vec![
            vec![],
            vec![0],
            vec![3, 4, 5, 6],
            vec![14997],
            vec![15000],
            (0..100).map(|i| i * 150).collect(),
            (0..4000).map(|i| i * 2).collect(),
        ];
        for c in &cases {
            assert_eq!(intersect(c, &big), naive(c, &big), "{c:?}");
            assert_eq!(intersect(&big, c), naive(c, &big));
        }
    }

    #[test]
    fn union_and_subtract() {
        assert_eq!(union_all(vec![vec![1, 3], vec![2, 3, 4]]), vec![1, 2, 3, 4]);
        assert_eq!(union_all(vec![vec![5], vec![1], vec![5, 9]]), vec![1, 5, 9]);
        let mut l = vec![1, 2, 3, 4, 5];
        subtract_in_place(&mut l, &[2, 4, 6]);
        assert_eq!(l, vec![1, 3, 5]);
        assert_eq!(
            intersect_all(vec![vec![1, 2, 3], vec![2, 3], vec![3, 4]]),
            vec![3]
        );
    }
}
