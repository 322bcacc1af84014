// Error types thrown inside rarlhf and caught once in main (src/cli/main.cpp):
//   ConfigError  a config file/field or command-line value is wrong   -> "rarlhf: error: ..." exit 1
//   IoError      a file is missing, unreadable or malformed            -> exit 1
// Messages are one line: "<file or field>: <what is wrong>; <what to do>".
#pragma once
#include <stdexcept>
#include <string>

namespace rarlhf {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class ConfigError : public Error {
 public:
  using Error::Error;
};

class IoError : public Error {
 public:
  using Error::Error;
};

}  // namespace rarlhf
