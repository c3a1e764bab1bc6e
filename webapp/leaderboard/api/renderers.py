import csv
import io

from rest_framework.renderers import BaseRenderer

# Leaderboard row fields in CSV column order; each benchmark's score follows as bench:<key>. ``stale`` lists the
# benchmarks whose result is stale ("key: reason; ..."), ``judges`` each LLM-judged benchmark's judge ("key=label").
CSV_COLUMNS = [
    "id", "name", "owner", "status", "visibility", "published", "citation", "source_url", "hub_url", "llm",
    "llm_family", "llm_hub_url", "n_params", "n_params_b", "n_params_nominal", "n_params_counted", "compressor",
    "compressor_version", "visual_tokens",
    "flops_q0", "flops", "latency_first_token_ms", "latency_decode_per_token_ms", "latency_device", "error", "stderr",
    "n_benchmarks", "source", "on_frontier", "rank", "rank_worst", "rank_tied", "updated_at", "stale", "judges",
]
# Measured or derived floats a spreadsheet needs a few digits of: errors and scores carry a standard
# error in the second or third digit, FLOPs and latencies are estimates. The JSON keeps full precision.
SIGNIFICANT_DIGITS = 4
ROUNDED_COLUMNS = {
    "n_params_b", "flops_q0", "flops", "latency_first_token_ms", "latency_decode_per_token_ms", "error", "stderr",
}


class LeaderboardCSVRenderer(BaseRenderer):
    """Exactly the rows of the JSON page (all=true: every filtered row), one line each, floats to 4
    significant digits; an error body becomes field,message lines."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        if isinstance(data, dict) and "results" in data:
            benchmarks = data.get("benchmarks", [])
            writer.writerow(CSV_COLUMNS + [f"bench:{key}" for key in benchmarks])
            for row in data["results"]:
                writer.writerow([_cell(row[column], column in ROUNDED_COLUMNS) for column in CSV_COLUMNS]
                                + [_cell(row["scores"].get(key), True) for key in benchmarks])
        else:
            writer.writerow(["field", "message"])
            for name, messages in (data or {}).items():
                for message in messages if isinstance(messages, list) else [messages]:
                    writer.writerow([name, message])
        return buffer.getvalue().encode(self.charset)


def _cell(value, rounded: bool = False):
    if isinstance(value, dict):  # stale {key: [reasons]}, judges {key: label}
        return "; ".join(f"{key}: {', '.join(found)}" if isinstance(found, list) else f"{key}={found}"
                         for key, found in value.items())
    if value is None:
        return ""
    if rounded and isinstance(value, float):
        return f"{value:.{SIGNIFICANT_DIGITS}g}"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
