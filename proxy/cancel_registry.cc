#include "proxy/cancel_registry.h"

namespace pgring::proxy {

CancelRegistry::Key CancelRegistry::Register(CancelFn fn) {
  std::lock_guard lock(mu_);
  Key key;
  do {
    key.pid = next_pid_++;
    if (next_pid_ <= 0) next_pid_ = 1;
  } while (by_pid_.contains(key.pid));
  key.secret = static_cast<int32_t>(rng_());
  by_pid_.emplace(key.pid, std::pair{key.secret, std::move(fn)});
  return key;
}

void CancelRegistry::Unregister(Key key) {
  std::lock_guard lock(mu_);
  by_pid_.erase(key.pid);
}

bool CancelRegistry::Cancel(Key key) {
  CancelFn fn;
  {
    std::lock_guard lock(mu_);
    auto it = by_pid_.find(key.pid);
    if (it == by_pid_.end() || it->second.first != key.secret) return false;
    fn = it->second.second;
  }
  fn();
  return true;
}

size_t CancelRegistry::size() const {
  std::lock_guard lock(mu_);
  return by_pid_.size();
}

}  // namespace pgring::proxy
