#include "transport/udp/datagram_socket.h"

#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

namespace ferry::udp {
namespace {

constexpr int kSocketBuffer = 16 << 20;     // room for a burst at several Gbit/s
constexpr size_t kMaxGsoSegments = 64;      // kernel limit (UDP_MAX_SEGMENTS)
constexpr size_t kMaxGsoBytes = 65000;      // one GSO send must fit an IP datagram
constexpr size_t kMaxMessagesPerCall = 32;
constexpr size_t kRecvSlot = 65536;         // a GRO super-packet can be this large
constexpr size_t kRecvSlots = 16;

void set_buffer(int fd, int force_opt, int opt, int bytes) {
  // As root, *BUFFORCE ignores net.core.[rw]mem_max; otherwise take what the limit allows.
  if (setsockopt(fd, SOL_SOCKET, force_opt, &bytes, sizeof bytes) != 0)
    setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof bytes);
}

}  // namespace

Status DatagramSocket::open(const udp_endpoint& local, const std::string& what) {
  boost::system::error_code ec;
  socket_.open(local.protocol(), ec);
  if (!ec) socket_.bind(local, ec);
  if (!ec) socket_.non_blocking(true, ec);
  if (ec) return Status(Error::kNetwork, what + ": UDP socket on " + local.address().to_string() + ": " + ec.message());
  int fd = socket_.native_handle();
  set_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, kSocketBuffer);
  set_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, kSocketBuffer);
  int on = 1;
  // GRO is an optimisation: receive() splits super-packets by the cmsg's segment size when
  // the kernel coalesced any, and takes datagrams one by one otherwise.
  setsockopt(fd, IPPROTO_UDP, UDP_GRO, &on, sizeof on);
  recv_area_.resize(kRecvSlot * kRecvSlots);
  return Status::ok();
}

Status DatagramSocket::connect(const udp_endpoint& peer) {
  boost::system::error_code ec;
  socket_.connect(peer, ec);
  if (ec) return Status(Error::kNetwork, "UDP connect to " + peer.address().to_string() + ":" +
                                             std::to_string(peer.port()) + ": " + ec.message());
  return Status::ok();
}

uint16_t DatagramSocket::local_port() const {
  boost::system::error_code ec;
  auto ep = socket_.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

void DatagramSocket::close() {
  boost::system::error_code ignored;
  socket_.close(ignored);
}

Result<size_t> DatagramSocket::send(const DatagramBatch& batch, size_t first, const udp_endpoint* to) {
  const int fd = socket_.native_handle();
  size_t offset = 0;
  for (size_t i = 0; i < first; ++i) offset += batch.lengths[i];
  size_t i = first;
  while (i < batch.count()) {
    // Group runs of equal-size datagrams (the last of a run may be shorter) into GSO sends;
    // without GSO every group is one datagram.
    const size_t max_segments = gso_ ? kMaxGsoSegments : 1;
    mmsghdr msgs[kMaxMessagesPerCall];
    iovec iovs[kMaxMessagesPerCall];
    alignas(cmsghdr) char control[kMaxMessagesPerCall][CMSG_SPACE(sizeof(uint16_t))];
    size_t group_count[kMaxMessagesPerCall];
    size_t group_bytes[kMaxMessagesPerCall];
    size_t n = 0;
    size_t j = i, off = offset;
    while (j < batch.count() && n < kMaxMessagesPerCall) {
      const uint16_t seg = batch.lengths[j];
      size_t k = j, bytes = 0;
      while (k < batch.count() && k - j < max_segments && bytes + batch.lengths[k] <= kMaxGsoBytes &&
             batch.lengths[k] <= seg) {
        bytes += batch.lengths[k];
        ++k;
        if (batch.lengths[k - 1] < seg) break;  // a short one ends the run
      }
      std::memset(&msgs[n], 0, sizeof msgs[n]);
      iovs[n].iov_base = const_cast<uint8_t*>(batch.bytes.data() + off);
      iovs[n].iov_len = bytes;
      msgs[n].msg_hdr.msg_iov = &iovs[n];
      msgs[n].msg_hdr.msg_iovlen = 1;
      if (to) {
        msgs[n].msg_hdr.msg_name = const_cast<sockaddr*>(to->data());
        msgs[n].msg_hdr.msg_namelen = static_cast<socklen_t>(to->size());
      }
      if (k - j > 1) {
        msgs[n].msg_hdr.msg_control = control[n];
        msgs[n].msg_hdr.msg_controllen = sizeof control[n];
        cmsghdr* c = CMSG_FIRSTHDR(&msgs[n].msg_hdr);
        c->cmsg_level = SOL_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        std::memcpy(CMSG_DATA(c), &seg, sizeof seg);
      }
      group_count[n] = k - j;
      group_bytes[n] = bytes;
      ++n;
      off += bytes;
      j = k;
    }
    int sent = ::sendmmsg(fd, msgs, static_cast<unsigned>(n), MSG_DONTWAIT);
    if (sent < 0) {
      int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) return batch.count() - i;
      if (gso_ && (err == EIO || err == EINVAL || err == EOPNOTSUPP || err == ENOPROTOOPT)) {
        gso_ = false;  // this kernel or device cannot segment: plain sends from now on
        continue;
      }
      if (err == ECONNREFUSED) continue;  // an ICMP from an earlier datagram; the peer may come back
      return Status(Error::kNetwork, std::string("UDP send: ") + std::strerror(err));
    }
    for (int m = 0; m < sent; ++m) {
      i += group_count[m];
      offset += group_bytes[m];
    }
    if (static_cast<size_t>(sent) < n) return batch.count() - i;
  }
  return size_t{0};
}

Result<size_t> DatagramSocket::receive(const DatagramHandler& on_datagram) {
  const int fd = socket_.native_handle();
  mmsghdr msgs[kRecvSlots];
  iovec iovs[kRecvSlots];
  sockaddr_storage names[kRecvSlots];
  alignas(cmsghdr) char control[kRecvSlots][CMSG_SPACE(sizeof(int))];
  for (size_t i = 0; i < kRecvSlots; ++i) {
    std::memset(&msgs[i], 0, sizeof msgs[i]);
    iovs[i].iov_base = recv_area_.data() + i * kRecvSlot;
    iovs[i].iov_len = kRecvSlot;
    msgs[i].msg_hdr.msg_iov = &iovs[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_name = &names[i];
    msgs[i].msg_hdr.msg_namelen = sizeof names[i];
    msgs[i].msg_hdr.msg_control = control[i];
    msgs[i].msg_hdr.msg_controllen = sizeof control[i];
  }
  int got = ::recvmmsg(fd, msgs, static_cast<unsigned>(kRecvSlots), MSG_DONTWAIT, nullptr);
  if (got < 0) {
    int err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK || err == ECONNREFUSED) return size_t{0};
    return Status(Error::kNetwork, std::string("UDP receive: ") + std::strerror(err));
  }
  size_t count = 0;
  udp_endpoint from;
  for (int m = 0; m < got; ++m) {
    const uint8_t* data = recv_area_.data() + static_cast<size_t>(m) * kRecvSlot;
    size_t len = msgs[m].msg_len;
    if (msgs[m].msg_hdr.msg_flags & MSG_TRUNC) continue;  // larger than any datagram we send: not ours
    size_t seg = len;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msgs[m].msg_hdr); c; c = CMSG_NXTHDR(&msgs[m].msg_hdr, c)) {
      if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
        int gso_size = 0;
        std::memcpy(&gso_size, CMSG_DATA(c), sizeof gso_size);
        if (gso_size > 0) seg = static_cast<size_t>(gso_size);
      }
    }
    auto* sa = reinterpret_cast<const sockaddr*>(&names[m]);
    if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) {
      from.resize(msgs[m].msg_hdr.msg_namelen);
      std::memcpy(from.data(), &names[m], msgs[m].msg_hdr.msg_namelen);
    }
    for (size_t off = 0; off < len; off += seg) {
      on_datagram(data + off, std::min(seg, len - off), from);
      ++count;
    }
  }
  return count;
}

double DatagramFaultShim::next_uniform() {
  // splitmix64: deterministic for a seed, good enough for fault injection.
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) / static_cast<double>(1ull << 53);
}

void DatagramFaultShim::apply(DatagramBatch& batch) {
  DatagramBatch out;
  out.bytes.reserve(batch.bytes.size() + held_.size());
  size_t off = 0;
  auto emit = [&](const uint8_t* p, size_t n) {
    out.bytes.insert(out.bytes.end(), p, p + n);
    out.lengths.push_back(static_cast<uint16_t>(n));
  };
  for (size_t i = 0; i < batch.count(); ++i) {
    const uint8_t* p = batch.bytes.data() + off;
    size_t n = batch.lengths[i];
    off += n;
    if (next_uniform() < faults_.drop) {
      ++dropped_;
      continue;
    }
    if (held_.empty() && next_uniform() < faults_.reorder) {
      held_.assign(p, p + n);  // overtaken by the next datagram
      continue;
    }
    emit(p, n);
    if (!held_.empty()) {
      emit(held_.data(), held_.size());
      held_.clear();
    }
    if (next_uniform() < faults_.duplicate) emit(p, n);
  }
  batch = std::move(out);
}

}  // namespace ferry::udp
