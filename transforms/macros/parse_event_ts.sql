{#- A raw timestamp (unix seconds, possibly fractional, or ISO 8601 with or without an offset)
    as a UTC TIMESTAMP without time zone; NULL when it cannot be read. Only text that starts like a
    date ("YYYY-") goes to the engine's timestamp cast: DuckDB also reads words such as 'epoch'
    there, Spark does not, and neither is a time the source meant. -#}
{% macro parse_event_ts(column) -%}
    case
        when try_cast(trim({{ column }}) as double) is not null
            then case
                when abs(try_cast(trim({{ column }}) as double)) < 253402300800  -- before year 10000
                    then {{ micros_to_timestamp('cast(round(try_cast(trim(' ~ column ~ ') as double) * 1000000) as bigint)') }}
            end
        when trim({{ column }}) like '____-%' then {{ text_to_utc_timestamp('trim(' ~ column ~ ')') }}
    end
{%- endmacro %}
