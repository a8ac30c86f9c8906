/* The machine's float64 FMA peak: independent chains of vector FMAs on every thread.

   cc -O3 -march=native -fopenmp benchmarks/machine/fma_peak.c -o /tmp/fma_peak && /tmp/fma_peak

   Prints GFLOP/s (2 flops per FMA lane) for 1 thread and for all threads, and the matching
   ceiling in coordinate-steps/s for a momentum step of 3 FMAs. */
#include <omp.h>
#include <stdio.h>

#define CHAINS 16   /* independent accumulators: more than latency × throughput */
typedef double vec __attribute__((vector_size(64)));  /* 8 doubles (AVX-512) */

static double run(int threads, long iterations) {
    double start = omp_get_wtime();
    double sink = 0;
    #pragma omp parallel num_threads(threads) reduction(+:sink)
    {
        vec acc[CHAINS], a = {0}, b = {0};
        for (int j = 0; j < 8; j++) { a[j] = 0.999999; b[j] = 1e-9; }
        for (int c = 0; c < CHAINS; c++) acc[c] = a;
        for (long i = 0; i < iterations; i++)
            for (int c = 0; c < CHAINS; c++) acc[c] = acc[c] * a + b;
        for (int c = 0; c < CHAINS; c++) for (int j = 0; j < 8; j++) sink += acc[c][j];
    }
    double seconds = omp_get_wtime() - start;
    if (sink == 42) printf("%g\n", sink);
    return 2.0 * 8 * CHAINS * (double)iterations * threads / seconds / 1e9;
}

int main(void) {
    long iterations = 200000000 / CHAINS;
    int all = omp_get_max_threads();
    int counts[2] = {1, all};
    for (int k = 0; k < (all > 1 ? 2 : 1); k++) {
        int threads = counts[k];
        double best = 0;
        for (int repeat = 0; repeat < 5; repeat++) { double g = run(threads, iterations); if (g > best) best = g; }
        printf("%2d thread(s): %7.1f GFLOP/s float64 FMA = %5.1f G coordinate-steps/s at 3 FMAs per step\n",
               threads, best, best / 6);
    }
    return 0;
}
