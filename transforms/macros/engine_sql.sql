{#- Where DuckDB and Spark SQL differ, models call one of these macros; dbt's adapter.dispatch picks
    the engine's version (duckdb__ / spark__), so each model stays one file for both engines. -#}

{#- The ingest stage's parquet for one raw table. DuckDB reads it through the source's
    external_location; Spark reads the same file by path. Both keep the source() lineage. -#}
{% macro raw_source(table) -%}{{ return(adapter.dispatch('raw_source')(table)) }}{%- endmacro %}
{% macro default__raw_source(table) -%}{{ source('raw', table) }}{%- endmacro %}
{% macro spark__raw_source(table) -%}
    {%- set relation = source('raw', table) -%}
    {%- set raw = (var('reclake_home', env_var('RECLAKE_HOME', '../.reclake')) | replace('`', '``')) ~ '/lake/raw/' ~ var('dataset') -%}
    {%- if table in ('interactions', 'items') and var('raw_layout', 'snapshot') == 'landing' -%}
    parquet.`{{ raw }}/{{ table }}/date=*/part.parquet`
    {%- else -%}
    parquet.`{{ raw }}/{{ table }}.parquet`
    {%- endif -%}
{%- endmacro %}

{#- Microseconds since the epoch -> TIMESTAMP (UTC, no time zone). -#}
{% macro micros_to_timestamp(expr) -%}{{ return(adapter.dispatch('micros_to_timestamp')(expr)) }}{%- endmacro %}
{% macro default__micros_to_timestamp(expr) -%}make_timestamp({{ expr }}){%- endmacro %}
{% macro spark__micros_to_timestamp(expr) -%}cast(timestamp_micros({{ expr }}) as timestamp_ntz){%- endmacro %}

{#- TIMESTAMP -> microseconds since the epoch. -#}
{% macro timestamp_to_micros(expr) -%}{{ return(adapter.dispatch('timestamp_to_micros')(expr)) }}{%- endmacro %}
{% macro default__timestamp_to_micros(expr) -%}epoch_us({{ expr }}){%- endmacro %}
{% macro spark__timestamp_to_micros(expr) -%}unix_micros(cast({{ expr }} as timestamp_ltz)){%- endmacro %}

{#- ISO 8601 text, with or without an offset -> UTC TIMESTAMP; NULL when it cannot be read. -#}
{% macro text_to_utc_timestamp(expr) -%}{{ return(adapter.dispatch('text_to_utc_timestamp')(expr)) }}{%- endmacro %}
{% macro default__text_to_utc_timestamp(expr) -%}
    try_cast(try_cast({{ expr }} as timestamptz) at time zone 'UTC' as timestamp)
{%- endmacro %}
{% macro spark__text_to_utc_timestamp(expr) -%}
    cast(try_cast({{ expr }} as timestamp_ltz) as timestamp_ntz)  {#- the session time zone is UTC #}
{%- endmacro %}

{#- Seconds from `start` to `end`, exact to the microsecond. -#}
{% macro seconds_between(start, end) -%}
    cast({{ timestamp_to_micros(end) }} - {{ timestamp_to_micros(start) }} as double) / 1000000
{%- endmacro %}

{% macro is_finite(expr) -%}{{ return(adapter.dispatch('is_finite')(expr)) }}{%- endmacro %}
{% macro default__is_finite(expr) -%}isfinite({{ expr }}){%- endmacro %}
{% macro spark__is_finite(expr) -%}
    (not isnan({{ expr }}) and abs({{ expr }}) != double('infinity'))
{%- endmacro %}

{#- Replace every match of a regular expression. -#}
{% macro regexp_replace_all(expr, pattern, replacement) -%}
    {{ return(adapter.dispatch('regexp_replace_all')(expr, pattern, replacement)) }}
{%- endmacro %}
{% macro default__regexp_replace_all(expr, pattern, replacement) -%}
    regexp_replace({{ expr }}, {{ pattern }}, {{ replacement }}, 'g')
{%- endmacro %}
{% macro spark__regexp_replace_all(expr, pattern, replacement) -%}
    regexp_replace({{ expr }}, {{ pattern }}, {{ replacement }})
{%- endmacro %}

{#- Concatenate `measure` over a group in `order_by` order (dbt's listagg cannot order on Spark). -#}
{% macro ordered_string_agg(measure, delimiter, order_by) -%}
    {{ return(adapter.dispatch('ordered_string_agg')(measure, delimiter, order_by)) }}
{%- endmacro %}
{% macro default__ordered_string_agg(measure, delimiter, order_by) -%}
    string_agg({{ measure }}, {{ delimiter }} order by {{ order_by }})
{%- endmacro %}
{% macro spark__ordered_string_agg(measure, delimiter, order_by) -%}
    listagg({{ measure }}, {{ delimiter }}) within group (order by {{ order_by }})
{%- endmacro %}
