"""Query parameters of the leaderboard APIs: validated here, so bad input gets a 400 that names
the parameter, and turned into the selectors' query objects."""

from django.conf import settings
from rest_framework import serializers

import fitting
from webapp.leaderboard.selectors import SCOPES, SORT_KEYS, Cost, DeployQuery, LeaderboardQuery, RowFilter

MAX_PAGE_SIZE = 200
# Bounds that keep every FLOPs product finite (JSON has no infinity).
MAX_PARAMS_B = 1e6
MAX_TOKENS = 1_000_000
MAX_FLOPS = 1e40


class CommaListField(serializers.ListField):
    """A list given as repeated parameters (?v=1&v=4), comma-separated (?v=1,4) or both."""

    def to_internal_value(self, data):
        items = [data] if isinstance(data, str) else list(data)
        split = [part.strip() for item in items for part in str(item).split(",") if part.strip()]
        return super().to_internal_value(split)


class CostQuerySerializer(serializers.Serializer):
    suite = serializers.SlugField(help_text="reasoning, ocr, synthetic, …")
    q = serializers.FloatField(default=50.0, min_value=0, max_value=MAX_TOKENS,
                               help_text="Query tokens Q (0: cached query).")
    g = serializers.FloatField(default=0.0, min_value=0, max_value=MAX_TOKENS, help_text="Generated tokens G.")
    vision_flops = serializers.FloatField(
        default=0.0, min_value=0, max_value=MAX_FLOPS,
        help_text="Vision-encoder FLOPs added to every configuration (left out by default)."
    )

    flops = serializers.CharField(
        default=fitting.DEFAULT_FLOPS_FORMULA, max_length=20,
        help_text=f"FLOPs formula: {'; '.join(fitting.formula_text(v) for v in fitting.FLOPS_FORMULA_VERSIONS)}.",
    )

    def validate_flops(self, value: str) -> str:
        if value not in fitting.FLOPS_FORMULA_VERSIONS:
            raise serializers.ValidationError(
                f"Unknown FLOPs formula {value!r}; known versions: {', '.join(fitting.FLOPS_FORMULA_VERSIONS)} "
                f"(v1, the default: the paper's 2·N·(Q + V + G); v2 adds QueCC's query pass, 2·N·Q)."
            )
        return value

    def cost(self) -> Cost:
        data = self.validated_data
        return Cost(query_tokens=data["q"], generated_tokens=data["g"], vision_encoder_flops=data["vision_flops"],
                    formula=data["flops"])


class RowFilterQuerySerializer(CostQuerySerializer):
    scope = serializers.ChoiceField(choices=SCOPES, default="all",
                                    help_text="mine, public (uploads), published (from papers) or all you may see.")
    compressor = CommaListField(child=serializers.CharField(max_length=100), required=False,
                                help_text="Compressor methods, or method/version.")
    family = CommaListField(child=serializers.CharField(max_length=100), required=False, help_text="LLM families.")
    n_min = serializers.FloatField(required=False, min_value=0, max_value=MAX_PARAMS_B,
                                   help_text="Smallest N, in billions.")
    n_max = serializers.FloatField(required=False, min_value=0, max_value=MAX_PARAMS_B,
                                   help_text="Largest N, in billions.")
    v = CommaListField(child=serializers.IntegerField(min_value=1, max_value=MAX_TOKENS), required=False,
                       help_text="Visual token counts.")
    search = serializers.CharField(required=False, allow_blank=True, max_length=200,
                                   help_text="Part of the checkpoint or LLM name.")

    def validate(self, data):
        if "n_min" in data and "n_max" in data and data["n_min"] > data["n_max"]:
            raise serializers.ValidationError({"n_max": f"n_max {data['n_max']:g} is below n_min {data['n_min']:g}."})
        return data

    def row_filter(self) -> RowFilter:
        data = self.validated_data
        return RowFilter(
            suite=data["suite"], scope=data["scope"], compressors=tuple(data.get("compressor", ())),
            families=tuple(data.get("family", ())), n_min_b=data.get("n_min"), n_max_b=data.get("n_max"),
            visual_tokens=tuple(data.get("v", ())), search=data.get("search", "").strip(),
        )


class LeaderboardQuerySerializer(RowFilterQuerySerializer):
    ordering = CommaListField(
        child=serializers.CharField(max_length=100), required=False,
        help_text=f"Sort keys, '-' for descending; default error. Keys: {', '.join(SORT_KEYS)}.",
    )
    page = serializers.IntegerField(default=1, min_value=1)
    page_size = serializers.IntegerField(default=50, min_value=1, max_value=MAX_PAGE_SIZE)
    all = serializers.BooleanField(
        default=False, help_text="Every row the filters keep, in one response (exports); page and page_size are ignored.",
    )

    def query(self) -> LeaderboardQuery:
        data = self.validated_data
        return LeaderboardQuery(
            rows=self.row_filter(), cost=self.cost(), ordering=tuple(data.get("ordering") or ("error",)),
            page=1 if data["all"] else data["page"], page_size=None if data["all"] else data["page_size"],
        )


class FrontierQuerySerializer(RowFilterQuerySerializer):
    pass


class CompressorQuerySerializer(CostQuerySerializer):
    pass


class DeployQuerySerializer(CostQuerySerializer):
    budget_flops = serializers.FloatField(required=False, min_value=0, max_value=MAX_FLOPS,
                                          help_text="Inference FLOPs per request.")
    budget_latency_ms = serializers.FloatField(
        required=False, min_value=0, max_value=1e9,
        help_text="Measured latency: time to first token + (G − 1) decode steps.",
    )
    n = CommaListField(child=serializers.FloatField(min_value=1e-6, max_value=MAX_PARAMS_B), required=False,
                       help_text="Allowed LLM sizes in billions (default: those measured).")
    v = CommaListField(child=serializers.IntegerField(min_value=1, max_value=MAX_TOKENS), required=False,
                       help_text="Allowed visual token counts (default: those measured).")
    compressor = CommaListField(child=serializers.CharField(max_length=100), required=False,
                                help_text="Allowed compressors (method or method/version; default: every fitted one).")
    law = serializers.CharField(required=False, help_text="Scaling law (default: the first of FRONTIER_FIT_LAWS).")

    def validate(self, data):
        budgets = [name for name in ("budget_flops", "budget_latency_ms") if name in data]
        if len(budgets) != 1:
            raise serializers.ValidationError(
                {"budget_flops": "Give exactly one budget: budget_flops (FLOPs) or budget_latency_ms (milliseconds)."}
            )
        laws = settings.FRONTIER_FIT_LAWS
        data["law"] = data.get("law") or laws[0]
        if data["law"] not in laws:
            raise serializers.ValidationError({"law": f"Unknown law {data['law']!r}; fitted laws: {', '.join(laws)}."})
        return data

    def query(self) -> DeployQuery:
        data = self.validated_data
        return DeployQuery(
            suite=data["suite"], cost=self.cost(), law=data["law"], budget_flops=data.get("budget_flops"),
            budget_latency_ms=data.get("budget_latency_ms"), n_options_b=tuple(sorted(set(data.get("n", ())))),
            token_options=tuple(sorted(set(data.get("v", ())))), compressors=tuple(data.get("compressor", ())),
        )
