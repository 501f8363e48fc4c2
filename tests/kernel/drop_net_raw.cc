// drop_net_raw PROGRAM ARGS...: runs PROGRAM without CAP_NET_RAW (dropped
// from the bounding, permitted, effective and inheritable sets), keeping
// the other capabilities: ila-server as deployed without that capability,
// for the unprivileged trace scenario in the kernel VM.
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <initializer_list>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: drop_net_raw PROGRAM [ARGS...]\n");
    return 2;
  }
  if (prctl(PR_CAPBSET_DROP, CAP_NET_RAW, 0, 0, 0) != 0) {
    std::perror("drop_net_raw: PR_CAPBSET_DROP");
    return 1;
  }
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capget, &header, data) != 0) {
    std::perror("drop_net_raw: capget");
    return 1;
  }
  const unsigned bit = 1u << (CAP_NET_RAW % 32);
  for (auto* set :
       {&data[0].effective, &data[0].permitted, &data[0].inheritable}) {
    *set &= ~bit;
  }
  if (syscall(SYS_capset, &header, data) != 0) {
    std::perror("drop_net_raw: capset");
    return 1;
  }
  execvp(argv[1], argv + 1);
  std::perror("drop_net_raw: exec");
  return 127;
}
