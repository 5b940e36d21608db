#include "proxy/cancel_registry.h"

#include "proxy/client_session.h"

namespace pgring::proxy {

CancelRegistry::Key CancelRegistry::Register(Target target) {
  std::lock_guard lock(mu_);
  Key key;
  do {
    key.pid = next_pid_++;
    if (next_pid_ <= 0) next_pid_ = 1;
  } while (by_pid_.contains(key.pid));
  key.secret = static_cast<int32_t>(rng_());
  by_pid_.emplace(key.pid, std::pair{key.secret, std::move(target)});
  return key;
}

void CancelRegistry::Unregister(Key key) {
  std::lock_guard lock(mu_);
  by_pid_.erase(key.pid);
}

bool CancelRegistry::Cancel(Key key) {
  Target target;
  {
    std::lock_guard lock(mu_);
    auto it = by_pid_.find(key.pid);
    if (it == by_pid_.end() || it->second.first != key.secret) return false;
    target = it->second.second;
  }
  asio::post(*target.io, [session = std::move(target.session)] {
    if (auto s = session.lock()) s->ForwardCancel();
  });
  return true;
}

size_t CancelRegistry::size() const {
  std::lock_guard lock(mu_);
  return by_pid_.size();
}

}  // namespace pgring::proxy
