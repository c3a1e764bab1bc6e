import csv
import io

from rest_framework.renderers import BaseRenderer

# Leaderboard row fields in CSV column order; each benchmark's score follows as bench:<key>.
CSV_COLUMNS = [
    "id", "name", "owner", "status", "visibility", "published", "citation", "source_url", "llm", "llm_family",
    "n_params", "n_params_b", "compressor", "compressor_version", "visual_tokens", "flops_q0", "flops",
    "latency_first_token_ms", "latency_decode_per_token_ms", "latency_device", "error", "stderr",
    "n_benchmarks", "source", "on_frontier", "updated_at",
]


class LeaderboardCSVRenderer(BaseRenderer):
    """Exactly the rows of the JSON page, one line each; an error body becomes field,message lines."""

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
                writer.writerow([_cell(row[column]) for column in CSV_COLUMNS]
                                + [_cell(row["scores"].get(key)) for key in benchmarks])
        else:
            writer.writerow(["field", "message"])
            for name, messages in (data or {}).items():
                for message in messages if isinstance(messages, list) else [messages]:
                    writer.writerow([name, message])
        return buffer.getvalue().encode(self.charset)


def _cell(value):
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
