/**
 * The properties every benchmarked save registers: one property per block, with a handful of attributes. The report
 * (bench/report.ts) prints the sealed size these blocks come to; docs/BENCHMARKS.md records it. Both designs register
 * the same inputs.
 */
export interface PropertyInput {
  id: string;
  name: string;
  address: string;
  owner: string;
  attributes: Record<string, string | number | boolean>;
}

const STREETS = ['Maple', 'Oak', 'Cedar', 'Birch', 'Willow', 'Elm', 'Aspen', 'Pine'];

/** propertyInput is the n-th property of a run (ids are unique within the run). */
export function propertyInput(run: string, n: number): PropertyInput {
  return {
    id: `bench-${run}-${n}`,
    name: `Kennel and garden ${n}`,
    address: `${(n % 9000) + 100} ${STREETS[n % STREETS.length]} Street, Pawtown, PT ${String(10000 + (n % 89999)).padStart(5, '0')}`,
    owner: `owner-${(n * 7919) % 100_003}`,
    attributes: {
      bedrooms: 1 + (n % 5),
      bathrooms: 1 + (n % 3),
      areaM2: 40 + (n % 260),
      petsAllowed: n % 4 !== 0,
      yearBuilt: 1900 + (n % 124),
      parcel: `PCL-${(n * 104729) % 10_000_000}`,
      notes: 'Fenced yard, dog door, near the park; inspected and registered by the benchmark.',
    },
  };
}
