{% macro is_blank(column) -%}
    ({{ column }} is null or trim({{ column }}) = '')
{%- endmacro %}
