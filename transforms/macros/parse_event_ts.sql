{#- A raw timestamp (unix seconds, possibly fractional, or ISO 8601 with or without an offset)
    as a UTC TIMESTAMP without time zone; NULL when it cannot be read. -#}
{% macro parse_event_ts(column) -%}
    case
        when try_cast(trim({{ column }}) as double) is not null
            then case
                when abs(try_cast(trim({{ column }}) as double)) < 253402300800  -- before year 10000
                    then {{ micros_to_timestamp('cast(round(try_cast(trim(' ~ column ~ ') as double) * 1000000) as bigint)') }}
            end
        else {{ text_to_utc_timestamp('trim(' ~ column ~ ')') }}
    end
{%- endmacro %}
