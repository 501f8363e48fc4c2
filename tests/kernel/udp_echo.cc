// udp_echo: the UDP traffic of the kernel VM scenarios (busybox has no UDP
// client). Never connect()s; every wait is bounded.
//   udp_echo serve PORT TAG SECONDS  answers each datagram on [::]:PORT with
//                                    "TAG <payload>" until SECONDS passed
//   udp_echo send ADDR PORT PAYLOAD MILLIS
//                                    sends PAYLOAD to [ADDR]:PORT, prints the
//                                    answer; exit 0 when one came within
//                                    MILLIS and ends with PAYLOAD, else 1
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

int Usage() {
  std::fprintf(stderr,
               "usage: udp_echo serve PORT TAG SECONDS\n"
               "       udp_echo send ADDR PORT PAYLOAD MILLIS\n");
  return 2;
}

bool ParseInt(const char* text, long lo, long hi, long* out) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi) {
    std::fprintf(stderr, "udp_echo: \"%s\" is not a number in [%ld, %ld]\n",
                 text, lo, hi);
    return false;
  }
  *out = v;
  return true;
}

long NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int Serve(long port, const char* tag, long seconds) {
  const int fd = socket(AF_INET6, SOCK_DGRAM, 0);
  sockaddr_in6 addr{};
  addr.sin6_family = AF_INET6;
  addr.sin6_addr = in6addr_any;
  addr.sin6_port = htons(static_cast<uint16_t>(port));
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr))) {
    std::perror("udp_echo serve: bind");
    return 1;
  }
  const long deadline = NowMs() + seconds * 1000;
  for (long now = NowMs(); now < deadline; now = NowMs()) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(deadline - now)) <= 0) continue;
    char buf[1024];
    sockaddr_in6 from{};
    socklen_t from_len = sizeof(from);
    const ssize_t n = recvfrom(fd, buf, sizeof(buf), 0,
                               reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n < 0) continue;
    const std::string reply = std::string(tag) + " " + std::string(buf, n);
    (void)sendto(fd, reply.data(), reply.size(), 0,
                 reinterpret_cast<sockaddr*>(&from), from_len);
  }
  close(fd);
  return 0;
}

int Send(const char* address, long port, const char* payload, long millis) {
  sockaddr_in6 to{};
  to.sin6_family = AF_INET6;
  to.sin6_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET6, address, &to.sin6_addr) != 1) {
    std::fprintf(stderr, "udp_echo: \"%s\" is not an IPv6 address\n", address);
    return 2;
  }
  const int fd = socket(AF_INET6, SOCK_DGRAM, 0);
  if (fd < 0 || sendto(fd, payload, std::strlen(payload), 0,
                       reinterpret_cast<sockaddr*>(&to), sizeof(to)) < 0) {
    std::perror("udp_echo send");
    return 1;
  }
  const long deadline = NowMs() + millis;
  for (long now = NowMs(); now < deadline; now = NowMs()) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(deadline - now)) <= 0) continue;
    char buf[1024];
    const ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
    if (n < 0) continue;
    const std::string reply(buf, n);
    const std::string want(payload);
    if (reply.size() >= want.size() &&
        reply.compare(reply.size() - want.size(), want.size(), want) == 0) {
      std::printf("%s\n", reply.c_str());
      close(fd);
      return 0;
    }
  }
  close(fd);
  std::fprintf(stderr, "udp_echo: no answer from [%s]:%ld in %ld ms\n", address,
               port, millis);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  long port = 0, n = 0;
  if (argc == 5 && std::strcmp(argv[1], "serve") == 0) {
    if (!ParseInt(argv[2], 1, 65535, &port) || !ParseInt(argv[4], 1, 3600, &n))
      return 2;
    return Serve(port, argv[3], n);
  }
  if (argc == 6 && std::strcmp(argv[1], "send") == 0) {
    if (!ParseInt(argv[3], 1, 65535, &port) || !ParseInt(argv[5], 1, 60000, &n))
      return 2;
    return Send(argv[2], port, argv[4], n);
  }
  return Usage();
}
