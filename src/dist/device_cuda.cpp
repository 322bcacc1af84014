// CUDA half of rank setup (compiled only with a CUDA LibTorch, see cmake/areas.cmake): make
// cuda:LOCAL_RANK the current device, so that allocations without an explicit index and NCCL's
// communicators land on this rank's GPU rather than all on GPU 0.
#include <c10/cuda/CUDAFunctions.h>

namespace rarlhf::dist::detail {

void set_current_cuda_device(int index) { c10::cuda::set_device(static_cast<c10::DeviceIndex>(index)); }

}  // namespace rarlhf::dist::detail
