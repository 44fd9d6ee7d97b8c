#include "data/preference.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "engine/factory.h"
#include "engine/files.h"
#include "engine/philox.h"
#include "ops/elementwise.h"

namespace spool::data {

namespace {

std::string field(const nlohmann::json& j, const char* name, const std::string& where) {
  auto it = j.find(name);
  SPOOL_CHECK(it != j.end(), where, ": no \"", name, "\" field");
  SPOOL_CHECK(it->is_string(), where, ": \"", name, "\" is ", it->type_name(), ", not a string");
  return it->get<std::string>();
}

}  // namespace

PreferenceSet load_preferences(const std::string& path, int64_t context) {
  std::error_code ec;
  SPOOL_CHECK(std::filesystem::is_regular_file(path, ec), "preferences: no such file: ", path);
  std::ifstream in(path, std::ios::binary);
  SPOOL_CHECK(in, "preferences: cannot read ", path);
  std::vector<PreferencePair> pairs;
  std::string text;
  int64_t line_no = 0;
  while (std::getline(in, text)) {
    ++line_no;
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (text.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string where = "preferences: " + path + ":" + std::to_string(line_no);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
      // nlohmann's message names the column and, for bad strings, the ill-formed UTF-8.
      throw Error(where + ": malformed JSON: " + e.what());
    }
    SPOOL_CHECK(j.is_object(), where, ": expected a JSON object, found ", j.type_name());
    PreferencePair p{field(j, "prompt", where), field(j, "chosen", where),
                     field(j, "rejected", where), line_no};
    // The first completion token is predicted from the prompt's last one: without a prompt it
    // would never be scored.
    SPOOL_CHECK(!p.prompt.empty(), where, ": the prompt is empty");
    SPOOL_CHECK(!p.chosen.empty(), where, ": the chosen completion is empty");
    SPOOL_CHECK(!p.rejected.empty(), where, ": the rejected completion is empty");
    SPOOL_CHECK(int64_t(p.prompt.size()) < context, where, ": the prompt is ", p.prompt.size(),
                " tokens, which leaves no room for a completion in the context of ", context);
    pairs.push_back(std::move(p));
  }
  SPOOL_CHECK(!in.bad(), "preferences: error reading ", path);
  SPOOL_CHECK(!pairs.empty(), "preferences: ", path, " holds no pairs");
  PreferenceSet set;
  set.path = path;
  for (size_t i = 0; i < pairs.size(); ++i)
    ((i + 1) % 10 == 0 ? set.val : set.train).push_back(std::move(pairs[i]));
  SPOOL_CHECK(!set.train.empty(), "preferences: ", path, " holds no training pairs");
  return set;
}

void write_preferences(const std::string& path, const std::vector<PreferencePair>& pairs) {
  OutputFile out(path, "preferences: writing " + path);
  for (const auto& p : pairs)
    out.write(
        nlohmann::ordered_json{{"prompt", p.prompt}, {"chosen", p.chosen}, {"rejected", p.rejected}}
            .dump() +
        "\n");
  out.commit();
}

std::vector<int64_t> byte_tokens(const std::string& text) {
  std::vector<int64_t> ids;
  for (char ch : text) ids.push_back(int64_t(static_cast<unsigned char>(ch)));
  return ids;
}

namespace {

std::vector<int64_t> row_tokens(const std::string& prompt, const std::string& completion,
                                int64_t context, int64_t& prompt_len) {
  std::vector<int64_t> ids = byte_tokens(prompt);
  prompt_len = int64_t(ids.size());
  for (char ch : completion) {
    if (int64_t(ids.size()) >= context) break;  // completions are cut to the context
    ids.push_back(int64_t(static_cast<unsigned char>(ch)));
  }
  return ids;
}

}  // namespace

PairBatch pair_batch(const std::vector<PreferencePair>& pairs, const std::vector<size_t>& which,
                     int64_t context) {
  SPOOL_CHECK(!which.empty(), "pair_batch: no pairs");
  const int64_t b = int64_t(which.size());
  std::vector<std::vector<int64_t>> rows(size_t(2 * b));
  std::vector<int64_t> prompt_len(size_t(2 * b));
  int64_t t = 2;
  for (int64_t i = 0; i < b; ++i) {
    const PreferencePair& p = pairs.at(which[size_t(i)]);
    SPOOL_CHECK(!p.prompt.empty() && int64_t(p.prompt.size()) < context,
                "pair_batch: pair at line ", p.line, " has a prompt of ", p.prompt.size(),
                " tokens; it must be 1 to ", context - 1, " for the context of ", context);
    rows[size_t(i)] = row_tokens(p.prompt, p.chosen, context, prompt_len[size_t(i)]);
    rows[size_t(b + i)] = row_tokens(p.prompt, p.rejected, context, prompt_len[size_t(b + i)]);
  }
  for (const auto& r : rows) t = std::max(t, int64_t(r.size()));
  std::vector<int64_t> tokens(size_t(2 * b * t), 0);
  std::vector<float> mask(size_t(2 * b * t), 0.f);
  for (int64_t r = 0; r < 2 * b; ++r)
    for (int64_t j = 0; j < int64_t(rows[size_t(r)].size()); ++j) {
      tokens[size_t(r * t + j)] = rows[size_t(r)][size_t(j)];
      if (j >= prompt_len[size_t(r)]) mask[size_t(r * t + j)] = 1.f;
    }
  return {from_vector(tokens, {2 * b, t}), from_vector(mask, {2 * b, t}), b};
}

PairBatch random_pair_batch(int64_t pairs, int64_t t, int64_t prompt, Generator* gen) {
  SPOOL_CHECK(pairs > 0 && prompt >= 0 && prompt < t, "random_pair_batch: ", pairs, " pairs of ", t,
              " tokens with a prompt of ", prompt);
  std::vector<float> m(size_t(2 * pairs * t), 0.f);
  for (int64_t r = 0; r < 2 * pairs; ++r)
    for (int64_t j = prompt; j < t; ++j) m[size_t(r * t + j)] = 1.f;
  return {to(rand({2 * pairs, t}, DType::f32, gen, 0, 256), DType::i64),
          from_vector(m, {2 * pairs, t}), pairs};
}

LmBatch sft_batch(const std::vector<PreferencePair>& pairs, const std::vector<size_t>& which,
                  int64_t context) {
  SPOOL_CHECK(!which.empty(), "sft_batch: no pairs");
  const int64_t b = int64_t(which.size());
  std::vector<std::vector<int64_t>> rows(static_cast<size_t>(b));
  std::vector<int64_t> prompt_len(static_cast<size_t>(b));
  int64_t t = 2;
  for (int64_t i = 0; i < b; ++i) {
    const PreferencePair& p = pairs.at(which[size_t(i)]);
    SPOOL_CHECK(!p.prompt.empty() && int64_t(p.prompt.size()) < context, "sft_batch: pair at line ",
                p.line, " has a prompt of ", p.prompt.size(), " tokens; it must be 1 to ",
                context - 1, " for the context of ", context);
    rows[size_t(i)] = row_tokens(p.prompt, p.chosen, context, prompt_len[size_t(i)]);
    t = std::max(t, int64_t(rows[size_t(i)].size()));
  }
  std::vector<int64_t> idx(size_t(b * (t - 1)), 0), targets(size_t(b * (t - 1)), -100);
  LmBatch out;
  for (int64_t i = 0; i < b; ++i) {
    const auto& r = rows[size_t(i)];
    for (int64_t j = 0; j + 1 < int64_t(r.size()); ++j) {
      idx[size_t(i * (t - 1) + j)] = r[size_t(j)];
      if (j + 1 >= prompt_len[size_t(i)]) {  // the target is a completion token
        targets[size_t(i * (t - 1) + j)] = r[size_t(j + 1)];
        ++out.real_targets;
      }
    }
  }
  out.idx = from_vector(idx, {b, t - 1});
  out.targets = from_vector(targets, {b, t - 1});
  return out;
}

std::vector<PreferencePair> make_typo_pairs(const std::vector<std::string>& docs, int64_t n,
                                            int64_t prompt_bytes, int64_t completion_bytes,
                                            double typo_rate, uint64_t seed) {
  SPOOL_CHECK(n > 0 && prompt_bytes > 0 && completion_bytes > 0,
              "make_typo_pairs: counts must be positive");
  SPOOL_CHECK(typo_rate > 0 && typo_rate <= 1, "make_typo_pairs: typo rate ", typo_rate,
              " must be in (0, 1]");
  std::string text;
  for (const auto& d : docs) text += d;
  const int64_t w = prompt_bytes + completion_bytes;
  SPOOL_CHECK(int64_t(text.size()) > w, "make_typo_pairs: the corpus has ", text.size(),
              " bytes, fewer than one window of ", w);
  std::vector<PreferencePair> out;
  const uint64_t span = uint64_t(int64_t(text.size()) - w);
  uint64_t counter = 0;
  auto next = [&] { return philox::draw(counter++, seed); };
  for (int64_t tries = 0; int64_t(out.size()) < n; ++tries) {
    SPOOL_CHECK(tries < n * 1000, "make_typo_pairs: too few ASCII windows in the corpus");
    const philox::Words r = next();
    const uint64_t start = ((uint64_t(r.w[0]) << 32) | r.w[1]) % span;
    const std::string win = text.substr(size_t(start), size_t(w));
    if (std::any_of(win.begin(), win.end(), [](char c) { return (unsigned char)c >= 0x80; }))
      continue;
    const std::string real = win.substr(size_t(prompt_bytes));
    std::string typo = real;
    for (char& c : typo) {
      const unsigned char u = static_cast<unsigned char>(c);
      if (!std::isalpha(u)) continue;
      const philox::Words d = next();
      if (philox::unit(d.w[0]) >= typo_rate) continue;
      const char base = std::isupper(u) ? 'A' : 'a';
      c = char(base + (c - base + 1 + int(d.w[1] % 25)) % 26);  // another letter, same case
    }
    if (typo == real) continue;
    out.push_back({win.substr(0, size_t(prompt_bytes)), real, typo, 0});
  }
  return out;
}

namespace {

bool letter(char c) {
  const unsigned char u = static_cast<unsigned char>(c);
  return u < 0x80 && std::isalpha(u);
}

}  // namespace

WordList::WordList(const std::vector<std::string>& docs, int64_t min_count) {
  std::unordered_map<std::string, int64_t> counts;
  for (const auto& d : docs) {
    std::string word;
    for (size_t i = 0; i <= d.size(); ++i) {
      if (i < d.size() && letter(d[i])) {
        word += char(std::tolower(static_cast<unsigned char>(d[i])));
      } else if (!word.empty()) {
        ++counts[word];
        word.clear();
      }
    }
  }
  for (const auto& [w, k] : counts)
    if (k >= min_count) words_.insert(w);
}

std::vector<std::string> WordList::completion_words(const std::string& prompt,
                                                    const std::string& completion) const {
  const std::string all = prompt + completion;
  std::vector<std::string> out;
  std::string word;
  for (size_t i = 0; i < all.size(); ++i) {
    if (letter(all[i])) word += char(std::tolower(static_cast<unsigned char>(all[i])));
    if (!word.empty() && (i + 1 == all.size() || !letter(all[i + 1]))) {
      // Ends at i: inside the completion, and not cut off by the end of the sample.
      if (i >= prompt.size() && i + 1 < all.size()) out.push_back(word);
      word.clear();
    }
  }
  return out;
}

SpellingScore score_spelling(const WordList& list, const std::string& prompt,
                             const std::string& completion) {
  SpellingScore s;
  for (const auto& w : list.completion_words(prompt, completion)) {
    ++s.words;
    s.known += list.contains(w) ? 1 : 0;
  }
  return s;
}

}  // namespace spool::data
