{#- The daily loop. When the data arrives by day (a landing zone), Dagster passes the run's days as
    vars window_start (first day) and window_end (the day after the last); the models that hold one
    row per raw record are then incremental on DuckDB: each run deletes the window's days from the
    table and inserts them again from the landed files, so a re-run, a late or a corrected day
    replaces exactly that day. Without a window (a snapshot, a bare `dbt build`) and on Spark they are
    plain tables rebuilt from every raw row: the same rows either way. -#}
{% macro daily_materialization() -%}
    {{ return('incremental' if var('window_start', none) is not none and target.type == 'duckdb' else 'table') }}
{%- endmacro %}

{% macro in_window(column) -%}
    {{ column }} >= cast('{{ var("window_start") }}' as date) and {{ column }} < cast('{{ var("window_end") }}' as date)
{%- endmacro %}

{#- pre_hook of the daily models: clear the window's days first (same transaction as the insert). -#}
{% macro delete_window() -%}
    {%- if is_incremental() -%}
        delete from {{ this }} where {{ in_window('landed_date') }}
    {%- endif -%}
{%- endmacro %}

{#- Tests of the per-record models say `where: "__landed_in_window__"`: in a day's incremental run
    they check that day's rows (the rows the run wrote), not the whole history again; otherwise
    (a snapshot, Spark's full rebuild, a bare `dbt build`) every row. dbt's own get_where_subquery,
    with the placeholder filled in. -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- if where -%}
        {%- if '__landed_in_window__' in where -%}
            {%- set windowed = var('window_start', none) is not none and target.type == 'duckdb' -%}
            {%- set where = where | replace('__landed_in_window__', in_window('landed_date') if windowed else 'true') -%}
        {%- endif -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
