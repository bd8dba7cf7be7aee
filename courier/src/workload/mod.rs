//! WORKLOAD-PLACEHOLDER: the workload runner (being written).
