// Minimum-cost assignment (the Hungarian method, Kuhn 1955 / Munkres 1957), in the O(n²·m)
// shortest-augmenting-path form with row and column potentials (Jonker & Volgenant's reduction).
// Our own ~40 lines rather than a dependency: the npm packages for this are small and unmaintained,
// and DETR needs only the rectangular dense case, which this covers (tested against brute force).

/** A matching: rows[k] is assigned to cols[k]; sorted by row, as scipy's linear_sum_assignment. */
export interface Assignment {
  rows: number[];
  cols: number[];
}

/**
 * Minimum-cost assignment of a dense cost matrix (row-major, `n` rows × `m` columns): every row is
 * matched to a distinct column when n ≤ m, every column to a distinct row when n > m, minimising
 * the total cost. Costs must be finite.
 */
export function linearSumAssignment(cost: ArrayLike<number>, n: number, m: number): Assignment {
  if (!Number.isInteger(n) || !Number.isInteger(m) || n < 0 || m < 0) throw new Error(`linearSumAssignment: bad shape ${n}×${m}`);
  if (cost.length !== n * m) throw new Error(`linearSumAssignment: ${cost.length} costs for a ${n}×${m} matrix`);
  for (let k = 0; k < cost.length; k++) {
    if (!Number.isFinite(cost[k]!)) throw new Error(`linearSumAssignment: cost[${Math.floor(k / Math.max(m, 1))}][${k % Math.max(m, 1)}] is ${cost[k]}; costs must be finite`);
  }
  if (n === 0 || m === 0) return { rows: [], cols: [] };
  if (n > m) {
    // Solve the transpose (rows ≤ columns) and swap back.
    const t = new Float64Array(n * m);
    for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) t[j * n + i] = cost[i * m + j]!;
    const a = solve(t, m, n);
    const pairs = a.rows.map((r, k) => [a.cols[k]!, r] as const).sort((x, y) => x[0] - y[0]);
    return { rows: pairs.map((p) => p[0]), cols: pairs.map((p) => p[1]) };
  }
  return solve(cost, n, m);
}

/** n ≤ m. Potentials u (rows), v (columns); p[j] = 1-based row on column j; way = augmenting path. */
function solve(a: ArrayLike<number>, n: number, m: number): Assignment {
  const u = new Float64Array(n + 1);
  const v = new Float64Array(m + 1);
  const p = new Int32Array(m + 1);
  const way = new Int32Array(m + 1);
  const minv = new Float64Array(m + 1);
  const used = new Uint8Array(m + 1);
  for (let i = 1; i <= n; i++) {
    p[0] = i;
    let j0 = 0;
    minv.fill(Infinity);
    used.fill(0);
    do {
      used[j0] = 1;
      const i0 = p[j0]!;
      let delta = Infinity;
      let j1 = 0;
      for (let j = 1; j <= m; j++) {
        if (used[j]) continue;
        const cur = a[(i0 - 1) * m + (j - 1)]! - u[i0]! - v[j]!;
        if (cur < minv[j]!) {
          minv[j] = cur;
          way[j] = j0;
        }
        if (minv[j]! < delta) {
          delta = minv[j]!;
          j1 = j;
        }
      }
      for (let j = 0; j <= m; j++) {
        if (used[j]) {
          u[p[j]!] += delta;
          v[j] -= delta;
        } else {
          minv[j] -= delta;
        }
      }
      j0 = j1;
    } while (p[j0] !== 0);
    do {
      const j1 = way[j0]!;
      p[j0] = p[j1]!;
      j0 = j1;
    } while (j0 !== 0);
  }
  const rowToCol = new Int32Array(n).fill(-1);
  for (let j = 1; j <= m; j++) if (p[j]! > 0) rowToCol[p[j]! - 1] = j - 1;
  const rows: number[] = [];
  const cols: number[] = [];
  for (let i = 0; i < n; i++) {
    rows.push(i);
    cols.push(rowToCol[i]!);
  }
  return { rows, cols };
}

/** The total cost of an assignment. */
export function assignmentCost(cost: ArrayLike<number>, m: number, a: Assignment): number {
  let s = 0;
  for (let k = 0; k < a.rows.length; k++) s += cost[a.rows[k]! * m + a.cols[k]!]!;
  return s;
}
