// The reference for `swift-dp-train bench-allreduce`: a plain MPI_Allreduce loop on float32
// with MPI_IN_PLACE and MPI_SUM, timed the same way (batches of about 0.2 s, mean over ranks,
// median of the batches), so the two tables show what our wrapper costs.
//   mpicc -O2 -o allreduce_baseline benchmarks/allreduce_baseline.c
//   mpirun -np 2 ./allreduce_baseline 4096 65536 1048576 ...
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    const int repeats = 5;
    if (rank == 0) printf("compression,ranks,bytes,microseconds,algbw_gb_s,busbw_gb_s\n");
    for (int a = 1; a < argc; a++) {
        long bytes = atol(argv[a]);
        int count = (int)(bytes / 4);
        float *buffer = malloc((size_t)count * sizeof(float));
        for (int i = 0; i < count; i++) buffer[i] = (float)(i % 7) * 1e-3f;
        MPI_Allreduce(MPI_IN_PLACE, buffer, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        MPI_Allreduce(MPI_IN_PLACE, buffer, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        MPI_Barrier(MPI_COMM_WORLD);
        double start = now();
        MPI_Allreduce(MPI_IN_PLACE, buffer, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        double probe = now() - start, total = 0;
        MPI_Allreduce(&probe, &total, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        double per_call = total / size > 1e-7 ? total / size : 1e-7;
        int iterations = (int)(0.2 / per_call);
        if (iterations < 3) iterations = 3;
        if (iterations > 10000) iterations = 10000;
        double batches[repeats];
        for (int r = 0; r < repeats; r++) {
            MPI_Barrier(MPI_COMM_WORLD);
            start = now();
            for (int i = 0; i < iterations; i++)
                MPI_Allreduce(MPI_IN_PLACE, buffer, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            double mine = (now() - start) / iterations, sum = 0;
            MPI_Allreduce(&mine, &sum, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
            batches[r] = sum / size;
        }
        qsort(batches, repeats, sizeof(double), compare);
        double seconds = batches[repeats / 2];
        double algbw = bytes / seconds / 1e9;
        if (rank == 0)
            printf("mpi_allreduce,%d,%ld,%.2f,%.4f,%.4f\n", size, bytes, seconds * 1e6, algbw,
                   algbw * 2.0 * (size - 1) / size);
        free(buffer);
    }
    MPI_Finalize();
    return 0;
}
